# The paper's figures and tables from the final shards (danqing/report/figures/), each as a PNG
# plus the CSV of the numbers it shows, registered in the Snakemake report by paper section.


# Table 6 and the drop reasons as HTML pages of the report.
rule report_tables:
    input:
        table="results/report/filtration_table.csv",
        reasons="results/report/drop_reason_summary.csv",
    output:
        table=report(
            "results/report/filtration_table.html",
            caption="../report/filtration_table.rst",
            category="1. Filtration (Sec. 3.2)",
            labels={"table": "Table 6: filtration"},
        ),
        reasons=report(
            "results/report/drop_reasons.html",
            caption="../report/drop_reasons.rst",
            category="1. Filtration (Sec. 3.2)",
            labels={"table": "Drop reasons"},
        ),
    log:
        "results/logs/report_tables.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_report_tables.py"


# Fig. 2: image width, height, minimum edge; caption length in jieba words.
rule figure_sizes:
    input:
        shards=final_shards,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig2_data_characteristics.png",
            "Fig. 2",
            "figure",
            "fig2",
            "2. Data characteristics (Sec. 3.3)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig2_data_characteristics.csv",
            "Fig. 2",
            "numbers",
            "fig2",
            "2. Data characteristics (Sec. 3.3)",
        ),
    log:
        "results/logs/figures/fig2.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_sizes.py"


# Fig. 4a: share of nouns, verbs and adjectives per caption (jieba POS).
rule figure_semantic_density:
    input:
        shards=final_shards,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig4a_semantic_density.png",
            "Fig. 4a",
            "figure",
            "fig4a",
            "3. Text quality (Sec. 5.1)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig4a_semantic_density.csv",
            "Fig. 4a",
            "numbers",
            "fig4a",
            "3. Text quality (Sec. 5.1)",
        ),
    log:
        "results/logs/figures/fig4a.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_semantic_density.py"


# Fig. 4b: pseudo-perplexity under the masked LM of figures.perplexity.model.
rule figure_perplexity:
    input:
        shards=final_shards,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig4b_perplexity.png",
            "Fig. 4b",
            "figure",
            "fig4b",
            "3. Text quality (Sec. 5.1)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig4b_perplexity.csv",
            "Fig. 4b",
            "numbers",
            "fig4b",
            "3. Text quality (Sec. 5.1)",
        ),
    log:
        "results/logs/figures/fig4b.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_perplexity.py"


# Fig. 6: image cluster sizes, FAISS k-means, ranked.
rule figure_clusters:
    input:
        shards=final_shards,
        embeddings=embedding_files,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig6_cluster_sizes.png",
            "Fig. 6",
            "figure",
            "fig6",
            "4. Semantic distribution (Sec. 5.3)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig6_cluster_sizes.csv",
            "Fig. 6",
            "numbers",
            "fig6",
            "4. Semantic distribution (Sec. 5.3)",
        ),
    log:
        "results/logs/figures/fig6.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_clusters.py"


# Fig. 7: image-text cosine similarity.
rule figure_similarity:
    input:
        shards=final_shards,
        embeddings=embedding_files,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig7_similarity.png",
            "Fig. 7",
            "figure",
            "fig7",
            "5. Image-text alignment (Sec. 5.4)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig7_similarity.csv",
            "Fig. 7",
            "numbers",
            "fig7",
            "5. Image-text alignment (Sec. 5.4)",
        ),
    log:
        "results/logs/figures/fig7.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_similarity.py"


# Fig. 11: word cloud of jieba words.
rule figure_wordcloud:
    input:
        shards=final_shards,
    output:
        png=figure_report(
            f"{FIG_DIR}/fig11_wordcloud.png",
            "Fig. 11",
            "figure",
            "fig11",
            "6. Exploring the data (App. C)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig11_wordcloud.csv",
            "Fig. 11",
            "numbers",
            "fig11",
            "6. Exploring the data (App. C)",
        ),
    log:
        "results/logs/figures/fig11.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
        stop_lists=STOP_LISTS,
    script:
        "../scripts/figure_wordcloud.py"


# Table 7: top source domains with counts and shares.
rule figure_top_domains:
    input:
        shards=final_shards,
    output:
        csv=f"{FIG_DIR}/table7_top_domains.csv",
        md=f"{FIG_DIR}/table7_top_domains.md",
        html=report(
            f"{FIG_DIR}/table7_top_domains.html",
            caption="../report/table7.rst",
            category="6. Exploring the data (App. C)",
            subcategory="Table 7",
            labels={"figure": "Table 7", "file": "table"},
        ),
    log:
        "results/logs/figures/table7.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
    script:
        "../scripts/figure_top_domains.py"


# Topics (Sec. 3.3), an optional target: `snakemake topics`.
rule topics:
    input:
        shards=final_shards,
        embeddings=lambda wc: embedding_files(wc) if HAVE_EMBEDDINGS else [],
    output:
        png=figure_report(
            f"{FIG_DIR}/fig3_topics.png",
            "Topics",
            "figure",
            "topics",
            "2. Data characteristics (Sec. 3.3)",
        ),
        csv=figure_report(
            f"{FIG_DIR}/fig3_topics.csv",
            "Topics",
            "numbers",
            "topics",
            "2. Data characteristics (Sec. 3.3)",
        ),
    log:
        "results/logs/figures/topics.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=FIGURES,
        stop_lists=STOP_LISTS,
    script:
        "../scripts/figure_topics.py"
