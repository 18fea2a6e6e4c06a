"""Adding a filter step takes its function, its `Step` row and its config/schema entry, nothing
else: the rule (rules/filters.smk), the filter registry, the step order and the report's rows
derive from the Step row. Proved on a temporary copy of the workflow and the package, run end to
end (default target: partition, the two steps, the report, the release)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("Snakefile", "rules", "scripts", "config", "envs", "profiles", "report", "danqing")
NEW = "digit_only_captions"

FUNCTION = f'''

def {NEW}(df: pl.DataFrame, cfg: dict) -> StepResult:
    """Drop captions that are digits alone (a throwaway step of tests/test_add_step.py)."""
    texts = df["alt_text"].to_list()
    reasons = ["digits_only" if t.strip().isdigit() else None for t in texts]
    return verdicts(df, "{NEW}", reasons, texts)
'''
STEP_ROW = f"""    Step(
        "{NEW}",
        SOURCE,
        "Digit-only captions",
        "filter",
        "shard",
        "Language Control & Content Safety",
        726_334_674,
        30.63,
    ),
"""
SCHEMA_ENTRY = f"""      {NEW}:
        type: object
        default: {{}}
        additionalProperties: false
        properties:
          strip: {{type: boolean, default: true}}
"""


def edit(path: Path, anchor: str, text: str, after: bool = False) -> None:
    """Insert `text` before (or after) the first `anchor` of the file; the anchor must exist."""
    content = path.read_text()
    assert anchor in content, f"{path}: {anchor!r} not found"
    new = anchor + text if after else text + anchor
    path.write_text(content.replace(anchor, new, 1))


@pytest.mark.e2e
def test_a_new_step_needs_only_its_function_step_row_and_config(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / part)
    # The four places a new step is written, and only these.
    (copy / "danqing/filters/source.py").write_text(
        (copy / "danqing/filters/source.py").read_text() + FUNCTION
    )
    edit(copy / "danqing/steps.py", '    Step(\n        "text_safety",', STEP_ROW)
    edit(copy / "config/schema.yaml", "      text_safety:\n", SCHEMA_ENTRY)
    edit(copy / "config/config.yaml", "  - language_control\n", f"  - {NEW}\n", True)
    rows = [
        {"uid": "u1", "url": "http://example.cn/1.jpg", "alt_text": "杭州西湖的雷峰塔夜景"},
        {"uid": "u2", "url": "http://example.cn/2.jpg", "alt_text": "20231105"},
        {"uid": "u3", "url": "http://example.cn/3.jpg", "alt_text": "一只橘猫趴在窗台上晒太阳"},
    ]
    for row in rows:
        row["languages"] = "zho"
    (copy / "pairs.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    (copy / "config/test.yaml").write_text(
        "input: {path: pairs.jsonl, format: jsonl}\nsteps: [language_control, " + NEW + "]\n"
    )
    env = dict(os.environ, PYTHONPATH=str(copy))
    target = f"results/steps/{NEW}"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/test.yaml"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    kept = pl.concat([pl.read_parquet(p) for p in sorted(copy.glob(f"{target}/*/s*[0-9].parquet"))])
    drops = pl.concat([pl.read_parquet(p) for p in copy.glob(f"{target}/*/*.drops.parquet")])
    assert sorted(kept["uid"]) == ["u1", "u3"]
    assert drops["uid"].to_list() == ["u2"] and drops["reason"].to_list() == ["digits_only"]
    # The report's filtration table has the step's row, from its counts records.
    table = pl.read_csv(copy / "results/report/filtration_table.csv")
    row = table.filter(pl.col("step") == NEW).row(0, named=True)
    assert (row["Steps"], row["Left Data Num"], row["Removed"]) == ("Digit-only captions", 2, 1)
