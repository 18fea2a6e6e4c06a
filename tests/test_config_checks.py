"""A config that would empty the dataset or fail late stops the run at start, naming the key."""

import math

import pytest

from danqing import config, config_checks
from danqing.config import deep_update
from danqing.steps import step_names
from tests.conftest import make_workdir, run_snakemake

ROOT = config.ROOT


def with_steps(overrides=None):
    return config.load(overrides=deep_update({"steps": step_names()}, overrides or {}))


def test_the_default_config_has_no_problem():
    assert config_checks.problems(with_steps(), ROOT) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"filters": {"blurry_images": {"min_laplacian_var": math.nan}}},
            "filters.blurry_images.min_laplacian_var: nan is not a finite number",
        ),
        ({"filters": {"text_constraints": {"min_words": 70}}}, "min_words 70 > max_words 60"),
        (
            {"filters": {"cross_modal_alignment": {"min_distance": 1.3}}},
            "min_distance 1.3 > max_distance 1.24",
        ),
        (
            {"filters": {"stop_words": {"lists": ["config/stopwords_zh.txt", "missing.txt"]}}},
            "filters.stop_words.lists: file not found: missing.txt",
        ),
        (
            {"filters": {"text_content_safety": {"fasttext_model": "nope.bin"}}},
            "filters.text_content_safety.fasttext_model: file not found: nope.bin",
        ),
        (
            {"filters": {"unk_tokens": {"vocab": "vocab.txt"}}},
            "filters.unk_tokens.vocab: file not found",
        ),
        (
            {"embedding": {"checkpoint": "clip_cn_vit-l-14.pt"}},
            "embedding.checkpoint: file not found",
        ),
    ],
)
def test_each_problem_is_named(overrides, message):
    found = config_checks.problems(with_steps(overrides), ROOT)
    assert any(message in line for line in found), found


def test_a_disabled_step_does_not_need_its_files():
    cfg = config.load(
        overrides={"steps": ["language_control"], "filters": {"unk_tokens": {"vocab": "vocab.txt"}}}
    )
    assert config_checks.problems(cfg, ROOT) == []


def test_an_enabled_step_without_its_settings_is_named():
    cfg = with_steps()
    del cfg["filters"]["cn_detect"]
    assert config_checks.problems(cfg, ROOT) == [
        "config key filters.cn_detect: step cn_detect is enabled but has no settings"
    ]
    cfg["steps"].remove("cn_detect")
    assert config_checks.problems(cfg, ROOT) == []


def test_snakemake_stops_before_any_job(tmp_path):
    workdir = make_workdir(tmp_path / "wf", {"filters": {"text_constraints": {"min_words": 70}}})
    proc = run_snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert "min_words 70 > max_words 60" in proc.stdout + proc.stderr


def test_an_unknown_step_is_named_with_the_known_ones():
    # The schema does not list the step names (the Step rows do): Snakemake's own validation
    # passes such a config, and the start-up check names the entry.
    cfg = with_steps()
    cfg["steps"] = [*cfg["steps"], "not_a_step"]
    found = config_checks.problems(cfg, ROOT)
    position = len(cfg["steps"]) - 1
    assert f"config key steps.{position}: 'not_a_step' is not a step (known: language_control," in (
        "\n".join(found)
    )


def test_dedup_index_settings_that_cannot_work_are_named():
    found = config_checks.problems(
        with_steps({"release": {"dedup_index": {"against": ["no/such/index"]}}}), ROOT
    )
    assert any("against[0]: no dedup index in no/such/index" in line for line in found), found
    text_only = config.load(
        overrides={
            "steps": ["language_control"],
            "release": {"dedup_index": {"write": True, "against": ["no/such/index"]}},
        }
    )
    found = "\n".join(config_checks.problems(text_only, ROOT))
    assert "release.dedup_index.write: the index holds the image embeddings" in found
    assert "cross_batch_dedup step, which is not enabled" in found
