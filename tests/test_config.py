import copy

import pytest
import yaml

from danqing import config
from tests.conftest import ROOT, make_workdir, run_snakemake


def test_default_config_is_valid_and_lists_paper_defaults():
    cfg = config.load()
    f = cfg["filters"]
    assert cfg["partition"]["num_batches"] == 7
    assert f["language_control"]["required_tag"] == "zho"
    assert (f["text_constraints"]["min_words"], f["text_constraints"]["max_words"]) == (5, 60)
    assert f["unk_tokens"]["max_unk"] == 5
    assert f["text_entropy"]["min_entropy"] == pytest.approx(6e-4)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"partition": {"num_batches": "seven"}}, "partition.num_batches"),
        (
            {"filters": {"text_constraints": {"min_words": 5, "max_words": 60, "max_wrds": 3}}},
            "filters.text_constraints",
        ),
        ({"surprise": 1}, "Additional properties"),
        ({"steps": ["language_control", "not_a_step"]}, "steps.1"),
        ({"filters": {"cn_detect": {"min_confidence": 2.0}}}, "filters.cn_detect.min_confidence"),
    ],
)
def test_wrong_keys_and_types_are_named(change, message):
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    bad = config.deep_update(copy.deepcopy(base), change)
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        config.validate(bad)


def test_snakemake_refuses_an_invalid_config_at_start(tmp_path):
    workdir = make_workdir(tmp_path / "wf", {"partition": {"shard_size": -3}})
    proc = run_snakemake(workdir, "-n", check=False, timeout=120)
    assert proc.returncode != 0
    assert "shard_size" in proc.stdout + proc.stderr
