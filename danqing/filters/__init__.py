"""Filter steps as pure functions `fn(frame, cfg) -> StepResult`.

A step either keeps a row (possibly rewritten, possibly with new score columns) or drops it with a
reason and the value that failed. `StepResult.check` enforces input = kept + dropped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from danqing.io import DROP_SCHEMA


@dataclass
class StepResult:
    kept: pl.DataFrame
    dropped: pl.DataFrame
    transformed: int = 0
    status: str = "ran"
    note: str = ""
    extra: dict = field(default_factory=dict)

    def check(self, n_input: int) -> StepResult:
        if self.kept.height + self.dropped.height != n_input:
            raise AssertionError(
                f"{n_input} input rows but {self.kept.height} kept + {self.dropped.height} dropped"
            )
        if self.dropped.height and self.dropped["uid"].null_count():
            raise AssertionError("a dropped row has no uid")
        return self


def verdicts(
    df: pl.DataFrame,
    step: str,
    reasons: Sequence[str | None],
    values: Sequence[object] = (),
    columns: dict[str, Sequence] | None = None,
    transformed: int = 0,
) -> StepResult:
    """Build a StepResult from one verdict per row: `reasons[i]` is None to keep row i.

    `values[i]` is the value that failed (stored as text in the drop table); `columns` are score
    columns computed for every row and kept on the surviving rows.
    """
    if len(reasons) != df.height:
        raise ValueError(f"{step}: {len(reasons)} verdicts for {df.height} rows")
    keep = pl.Series("keep", [r is None for r in reasons], dtype=pl.Boolean)
    frame = df
    if columns:
        frame = frame.with_columns(
            [pl.Series(name, list(vals), strict=False) for name, vals in columns.items()]
        )
    kept = frame.filter(keep)
    values = list(values) if len(values) else [None] * df.height
    dropped = pl.DataFrame(
        {
            "uid": [u for u, r in zip(df["uid"].to_list(), reasons, strict=True) if r is not None],
            "step": [step] * (df.height - kept.height),
            "reason": [r for r in reasons if r is not None],
            "value": [_as_text(v) for v, r in zip(values, reasons, strict=True) if r is not None],
        },
        schema=DROP_SCHEMA,
    )
    return StepResult(kept=kept, dropped=dropped, transformed=transformed).check(df.height)


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


FilterFn = Callable[[pl.DataFrame, dict], StepResult]


def registry() -> dict[str, FilterFn]:
    """Step name -> filter function, for the steps that run on one shard's rows: every step of
    danqing.steps without a rule of its own, its function named like it in its stage's module."""
    from danqing.steps import generated_rule_steps

    return {
        step.name: getattr(importlib.import_module(step.module), step.name)
        for step in generated_rule_steps()
    }
