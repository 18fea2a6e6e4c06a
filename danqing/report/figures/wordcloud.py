"""Fig. 11: the word cloud of sampled captions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import polars as pl

from danqing.report.figures.plotting import (
    DPI,
    OTHER_COLOUR,
    OURS_COLOUR,
    FigureDataMissing,
    pyplot,
    save_figure,
    write_csv,
)
from danqing.report.figures.sampling import sample_frame

# Fig. 11: word cloud; Table 7: source domains


def word_frequencies(
    word_lists: Iterable[Sequence[str]],
    stop_words: frozenset[str] = frozenset(),
    min_length: int = 1,
    top: int = 200,
) -> pl.DataFrame:
    """The `top` most frequent jieba words (rank, word, count), stop words, words shorter than
    `min_length` characters and tokens without a letter, digit or Han character left out."""
    from danqing.chinese_text import is_word

    counts: Counter = Counter()
    for words in word_lists:
        counts.update(
            w for w in words if len(w) >= min_length and is_word(w) and w.lower() not in stop_words
        )
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return pl.DataFrame(
        {
            "rank": list(range(1, len(ranked) + 1)),
            "word": [w for w, _ in ranked],
            "count": [c for _, c in ranked],
        },
        schema_overrides={"word": pl.String, "count": pl.Int64},
    )


def plot_wordcloud(
    numbers: pl.DataFrame,
    out,
    width: int = 1200,
    height: int = 675,
    seed: int = 1,
    notes: Sequence[str] = (),
) -> None:
    from wordcloud import WordCloud

    from danqing.report.fonts import cjk_font_path

    if numbers.height == 0:
        raise FigureDataMissing("no words to draw")
    from matplotlib.colors import LinearSegmentedColormap

    # Dark cinnabar to dark azure (丹青): every word stays readable on white.
    colours = LinearSegmentedColormap.from_list(
        "danqing", ["#7b1e1e", OURS_COLOUR, "#1d4e6b", OTHER_COLOUR]
    )
    cloud = WordCloud(
        font_path=str(cjk_font_path()),
        width=width,
        height=height,
        background_color="white",
        colormap=colours,
        random_state=seed,
        prefer_horizontal=0.9,
        max_words=numbers.height,
        collocations=False,
    )
    cloud.generate_from_frequencies(dict(zip(numbers["word"], numbers["count"], strict=True)))
    plt = pyplot()
    # The PNG is as wide as the cloud, plus a title strip.
    fig, ax = plt.subplots(figsize=(width / DPI, height / DPI + 0.4))
    ax.imshow(cloud.to_array(), interpolation="bilinear")
    ax.axis("off")
    ax.set_title(f"词云 Word cloud of jieba words (Fig. 11), top {numbers.height} words")
    save_figure(fig, out, notes)


def build_wordcloud(shards, png, csv, cfg, stop_lists: Sequence[str] = ()) -> pl.DataFrame:
    from danqing.chinese_text import read_word_list, words_of

    stop: set[str] = set()
    for path in stop_lists:
        stop.update(w.lower() for w in read_word_list(path))
    sample = sample_frame(shards, ["alt_text", "words"], cfg["sample_rows"], cfg["seed"])
    wcfg = cfg["wordcloud"]
    numbers = word_frequencies(
        words_of(sample) if sample.height else [],
        frozenset(stop),
        wcfg["min_word_length"],
        wcfg["max_words"],
    )
    if numbers.height == 0:
        raise FigureDataMissing("the final pairs have no words to draw")
    write_csv(numbers, csv)
    plot_wordcloud(numbers, png, wcfg["width"], wcfg["height"], cfg["seed"])
    return numbers
