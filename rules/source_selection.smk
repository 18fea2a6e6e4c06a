# Keep pairs whose Common Crawl language tags contain `zho`.
rule language_control:
    input:
        shard=step_input("language_control"),
    output:
        **step_outputs("language_control"),
    log:
        step_log("language_control"),
    conda:
        "../envs/text.yaml"
    params:
        step="language_control",
        cfg=config["filters"]["language_control"],
    script:
        "../scripts/filter_shard.py"


# Drop unsafe captions (lexicon and/or fastText classifier).
rule text_safety:
    input:
        shard=step_input("text_safety"),
    output:
        **step_outputs("text_safety"),
    log:
        step_log("text_safety"),
    conda:
        "../envs/text.yaml"
    params:
        step="text_safety",
        cfg=config["filters"]["text_safety"],
    script:
        "../scripts/filter_shard.py"


# Drop pairs from blacklisted image or page domains.
rule source_reliability:
    input:
        shard=step_input("source_reliability"),
    output:
        **step_outputs("source_reliability"),
    log:
        step_log("source_reliability"),
    conda:
        "../envs/text.yaml"
    params:
        step="source_reliability",
        cfg=config["filters"]["source_reliability"],
    script:
        "../scripts/filter_shard.py"


# Keep captions of 5 to 60 characters that are not a file name or interface text.
rule text_constraints:
    input:
        shard=step_input("text_constraints"),
    output:
        **step_outputs("text_constraints"),
    log:
        step_log("text_constraints"),
    conda:
        "../envs/text.yaml"
    params:
        step="text_constraints",
        cfg=config["filters"]["text_constraints"],
    script:
        "../scripts/filter_shard.py"
