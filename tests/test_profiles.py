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
from tests.conftest import ROOT, make_workdir, run_snakemake
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


RULEGRAPH_NODE = re.compile(r'^\s*(\d+)\[label = "(\w+)"', re.M)
RULEGRAPH_EDGE = re.compile(r"^\s*(\d+) -> (\d+)\s*$", re.M)


def rule_graph(workdir: Path) -> dict[str, set[str]]:
    """Rule -> the rules that consume its outputs, from `snakemake --rulegraph`."""
    proc = run_snakemake(
        workdir, "--rulegraph", "--configfile", str(workdir / "config" / "bench.yaml"), timeout=300
    )
    names = dict(RULEGRAPH_NODE.findall(proc.stdout))
    graph: dict[str, set[str]] = {name: set() for name in names.values()}
    for source, target in RULEGRAPH_EDGE.findall(proc.stdout):
        graph[names[source]].add(names[target])
    return graph


def downstream(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [consumer for rule in start for consumer in graph[rule]]
    while todo:
        rule = todo.pop()
        if rule not in seen:
            seen.add(rule)
            todo.extend(graph[rule])
    return seen


def test_groups_are_closed_chains_of_the_rule_graph(tmp_path):
    """A rule outside a group that consumes one member and feeds another would make group job and
    rule job wait on each other: Snakemake would fail to schedule the run."""
    groups = load("slurm")["groups"]
    assert groups, "the slurm profile groups no rule"
    graph = rule_graph(dag_scale.make_workdir(tmp_path / "wf", shards=2, shard_size=1000))
    assert {"image_metrics", "nsfw_scores", "release_shard"} <= set(graph), sorted(graph)
    for group in set(groups.values()):
        members = {rule for rule, name in groups.items() if name == group}
        after = downstream(graph, members)
        between = {rule for rule in after - members if downstream(graph, {rule}) & members}
        assert not between, f"group {group}: {sorted(between)} sit between its members"
        # One chain: every member but the first consumes another member's output.
        assert len(members - after) == 1, (
            f"group {group} has several first steps: {members - after}"
        )


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
        resources = {
            **profile["default-resources"],
            **rule["resources"],
            **profile.get("set-resources", {}).get(name, {}),
        }
        assert resources.get("runtime") and resources.get("mem_mb"), name


def test_each_filter_rule_requests_its_steps_resources_class(rules):
    from danqing.steps import RESOURCE_CLASSES, generated_rule_steps

    for step in generated_rule_steps():
        assert step.resources in RESOURCE_CLASSES, step.name
        requested = {k: rules[step.name]["resources"].get(k) for k in ("mem_mb", "runtime")}
        assert requested == RESOURCE_CLASSES[step.resources], step.name


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
    # group-components: 1 means one shard per group job, so every grouped rule runs per shard.
    for rule in load(name).get("groups", {}):
        assert stats.get(rule) == 14, (rule, stats.get(rule))


def test_dry_run_from_scratch_with_the_local_profile(tmp_path):
    """The command a user types, in a fresh working directory: the DAG up to the checkpoint."""
    workdir = make_workdir(tmp_path / "wf")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/local"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
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
