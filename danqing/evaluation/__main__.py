"""Measured precision and recall of the caption steps on the real evaluation sets.

    python -m danqing.evaluation [--config config/config.yaml] [--show N]

Reads the texts from shared/data (DANQING_SHARED_DATA) and the labels from evaluation/labels,
runs the partition's row contract and every caption step with the configured thresholds, and
prints: the share of each set kept, each filter's precision on labelled rows, where the page
furniture of the news pages went, advertising left among kept news alts, noise left in kept
captions, and (with --show) examples of every step's drops.
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from danqing import config
from danqing.evaluation import caption_chain, real_sets, scores


def evaluate(filters: dict) -> dict[str, pl.DataFrame]:
    """Set name -> outcomes joined with labels, for every real set."""
    tables = {}
    for spec in real_sets.SETS:
        raw = real_sets.load(spec.name)
        tables[spec.name] = scores.joined(raw, caption_chain.run(raw, filters))
    return tables


def report(tables: dict[str, pl.DataFrame], filters: dict, show: int = 0, out=sys.stdout) -> None:
    pl.Config.set_tbl_rows(100)
    pl.Config.set_fmt_str_lengths(60)
    print("## Share of each real set kept by the caption steps", file=out)
    for name, table in tables.items():
        s = scores.summary(name, table)
        lengths = table.filter(pl.col("reason").is_in(scores.LENGTH_REASONS)).height
        print(
            f"{name:8s} {s.kept:6d} / {s.rows:6d} kept ({100 * s.kept_share:6.2f}%), "
            f"{lengths} length drops — {real_sets.BY_NAME[name].description}",
            file=out,
        )
    print("\n## Precision of each step on labelled rows (length drops excluded)", file=out)
    print(scores.filter_precision(list(tables.values())), file=out)
    news = tables["news"]
    print("\n## News page furniture: dropped before the download, with the right reason", file=out)
    print(scores.furniture_recall(news), file=out)
    ads, kept = scores.advertising_among_kept(news)
    print(f"\nadvertising/unsafe among kept labelled news alts: {ads} / {kept}", file=out)
    print("\n## Noise left in kept captions (independent patterns)", file=out)
    for kind, uids in scores.noise_residue(list(tables.values())).items():
        print(f"{kind:10s} {len(uids):4d} {uids[:8]}", file=out)
    print("\n## Cleaning against the noise labels (all labelled rows)", file=out)
    labelled = pl.concat([real_sets.load(n) for n in ("weibo", "wukong", "news")])
    print(
        scores.cleaning_agreement(labelled, filters["emoji_special_chars"]["emoticons"]), file=out
    )
    if show:
        print("\n## Drops by step and reason (examples)", file=out)
        everything = pl.concat(list(tables.values()))
        for (step, reason), part in everything.filter(pl.col("step").is_not_null()).group_by(
            ["step", "reason"], maintain_order=True
        ):
            print(f"\n{step} / {reason}: {part.height}", file=out)
            for row in part.head(show).iter_rows(named=True):
                text = (row["alt_text"] or "").replace("\n", " ")[:70]
                print(f"   {row['uid']:18s} {str(row['label']):11s} {text}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(config.DEFAULT_CONFIG))
    parser.add_argument("--show", type=int, default=0, help="examples per step and reason")
    args = parser.parse_args(argv)
    filters = config.load(args.config)["filters"]
    report(evaluate(filters), filters, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
