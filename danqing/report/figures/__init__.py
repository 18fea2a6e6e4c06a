"""The paper's data figures and tables, recomputed from the workflow's final shards.

Fig. 2 (image sizes, caption lengths), Fig. 4 (semantic-word density by jieba POS; masked-LM
pseudo-perplexity), Fig. 6 (FAISS k-means cluster sizes), Fig. 7 (image-text similarity),
Fig. 11 (word cloud) and Table 7 (top source domains). Each is two steps: a `*_numbers` function
computes a Polars frame (written as the figure's CSV) and a `plot_*` function draws the PNG from
that frame alone, so the CSV holds exactly the numbers the figure shows. What a figure cannot show
(no images in a text-only run, a comparison dataset without embeddings) becomes a note printed on
the figure, never a made-up series.

Whole-dataset statistics (sizes, lengths, domains) are summed shard by shard; per-caption models
(POS tagging, perplexity, clustering, word counts) run on a seeded random sample of at most
`sample_rows` pairs, taken from every shard in proportion to its rows (the paper: 10M-pair samples).

One module per figure (`build_*` is what its scripts/figure_*.py entry point calls); `sampling`
and `plotting` hold what they share."""
