"""The Snakemake profiles (profiles/local, profiles/slurm): they parse as Snakemake parses them,
name only rules and groups that exist, keep GPU requests and site settings where they belong, and
`snakemake -n` plans a run with them."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

from benchmarks import dag_scale
from danqing.steps import STEPS
from tests.conftest import ROOT, make_workdir
from tests.test_envs import workflow_rules

PROFILES = ("local", "slurm")
STEP_ORDER = [step.name for step in STEPS]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    return workflow_rules(str(tmp_path_factory.mktemp("rules")))


@pytest.mark.parametrize("name", PROFILES)
def test_profile_parses_as_snakemake_reads_it(name):
    path = ROOT / "profiles" / name / "config.yaml"
    stream = io.StringIO(path.read_text())
    stream.name = str(path)
    args = ProfileConfigFileParser().parse(stream)
    assert args["default-resources"], name
    assert all("=" in entry for entry in args["default-resources"])
    for entry in args.get("set-resources", []):
        rule, assignment = entry.split(":", 1)
        assert rule and "=" in assignment, entry
    assert args["rerun-incomplete"] in ("True", "true", True)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_names_only_existing_rules(name, rules):
    profile = load(name)
    for key in ("set-threads", "set-resources", "groups"):
        unknown = set(profile.get(key, {})) - set(rules)
        assert not unknown, f"profiles/{name} {key} names rules that do not exist: {unknown}"
    groups = set(profile.get("groups", {}).values())
    assert set(profile.get("group-components", {})) <= groups


def test_groups_chain_consecutive_per_shard_steps():
    """A group job runs a chain of one shard's steps; a step of another group or none between two
    of its members would make group and step wait on each other."""
    groups = load("slurm")["groups"]
    assert groups, "the slurm profile groups no rule"
    scope = {step.name: step.scope for step in STEPS}
    for group in set(groups.values()):
        members = [rule for rule, name in groups.items() if name == group]
        assert all(scope.get(rule) == "shard" for rule in members), (group, members)
        positions = sorted(STEP_ORDER.index(rule) for rule in members)
        assert positions == list(range(positions[0], positions[-1] + 1)), (
            f"group {group} skips steps: {STEP_ORDER[positions[0]:positions[-1] + 1]}")


def test_slurm_profile_site_settings_sit_in_one_place():
    profile = load("slurm")
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(defaults)
    # A GPU model or count among the defaults would give every job a GPU.
    assert not {"gpu", "gpu_model", "gres"} & set(defaults)
    for rule, resources in profile.get("set-resources", {}).items():
        assert not {"slurm_partition", "slurm_account"} & set(resources), rule
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    for key in ("slurm_partition", "slurm_account"):
        assert len(re.findall(rf"^\s+{key}:", text, re.M)) == 1, f"{key} set in more than one place"
    # Without slurmdbd, sacct never answers and the run waits forever.
    assert profile["slurm-status-command"] == "squeue"


def test_every_slurm_job_gets_a_runtime_and_memory(rules):
    profile = load("slurm")
    for name, rule in rules.items():
        if rule["norun"]:
            continue
        resources = {**profile["default-resources"], **profile.get("set-resources", {}).get(name, {})}
        assert resources.get("runtime") and resources.get("mem_mb"), name


def test_local_profile_caps_gpu_jobs():
    profile = load("local")
    assert profile["resources"] == {"gpu": 1}
    assert profile["rerun-incomplete"] is True
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])


@pytest.mark.parametrize("name", PROFILES)
def test_dry_run_plans_every_shard_step_with_the_profile(name, tmp_path):
    workdir = dag_scale.make_workdir(tmp_path / "wf", shards=14, shard_size=1000)
    _, _, stats, out = dag_scale.dry_run(workdir, name)
    per_shard = [step for step in STEP_ORDER if stats.get(step) == 14]
    assert len(per_shard) >= 12, stats
    assert stats["filtration_table"] == 1 and stats["drop_reasons"] == 1


def test_dry_run_from_scratch_with_the_local_profile(tmp_path):
    """The command a user types, in a fresh working directory: the DAG up to the checkpoint."""
    workdir = make_workdir(tmp_path / "wf")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/local"],
        cwd=workdir, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "partition_input" in out and "Using profile profiles/local" in out


def test_dag_scale_quick_mode(tmp_path):
    out = tmp_path / "dag.json"
    assert dag_scale.main(["--quick", "--json", str(out)]) == 0
    (row,) = yaml.safe_load(out.read_text())
    assert row["shards"] == dag_scale.QUICK_SHARDS
    assert row["jobs"] >= 12 * dag_scale.QUICK_SHARDS
    assert row["seconds"] > 0


def test_profiles_are_documented():
    doc = (ROOT / "docs" / "cluster.md").read_text()
    assert "--profile profiles/slurm" in doc and "--profile profiles/local" in doc
    assert Path(ROOT / "profiles/slurm/config.yaml").exists()
