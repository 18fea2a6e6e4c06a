"""The demo workflow on a real single-node SLURM cluster, through `--executor slurm` and the
project's profiles/slurm, against a local run of the same config.

Opt-in (it installs Debian packages and starts daemons as root):

    make test-slurm        # = DQ_SLURM_TESTS=1 pytest -m slurm tests/slurm -s

The cluster (tests/slurm/cluster.py) is 127.0.0.1 with two fake GPUs. The test workflow is the
repository's whole pipeline (its GPU rule, image_embeddings, runs on the CPU inside a job that was
given a fake GPU), plus one GPU-tagged rule (`gpu_probe`) that exists only in the test's copy and
records the CUDA_VISIBLE_DEVICES its job got; every rule whose jobs declare gpu > 0 is checked the
same way. What the jobs asked for and
got is read back from slurmctld (`scontrol show job`, `scontrol write batch_script`), not from
Snakemake's side.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from danqing.demo.server import serve
from tests.conftest import ROOT, make_workdir, write_demo_pairs
from tests.slurm.cluster import (
    ETC_CONF,
    Cluster,
    Unavailable,
    ensure_installed,
    single_node_cluster,
)

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("DQ_SLURM_TESTS") != "1",
        reason="installs and starts SLURM as root; run with DQ_SLURM_TESTS=1 (make test-slurm)",
    ),
]

# The whole pipeline, images from the demo image server on 127.0.0.1 (the compute node is this
# machine). The demo rows lose their batch and the partition makes 2 batches of one shard each:
# every kind of job (GPU-tagged embeddings, per-batch and cross-batch dedup included) on few
# shards keeps the run within CI's time (every SLURM job starts its own Snakemake on the node).
# DQ_SLURM_SHARD_SIZE=60 gives 2 shards a batch.
DEMO_ROWS = int(os.environ.get("DQ_SLURM_ROWS", "200"))
OVERRIDES = {
    "input": {"path": "pairs.jsonl", "format": "jsonl"},
    "partition": {
        "num_batches": int(os.environ.get("DQ_SLURM_BATCHES", "2")),
        "shard_size": int(os.environ.get("DQ_SLURM_SHARD_SIZE", "200")),
    },
    # A timeout with room for a loaded machine: a demo image that misses it in one run only makes
    # the two runs differ (seen at 6 s with the suite running beside the test).
    "filters": {"download_images": {"processes": 1, "thread_count": 16, "timeout": 10}},
}
SLOW_SECONDS = 30  # the demo's `timeout` case stalls past the download timeout
ACCOUNT = "dq_test_account"
NO_GROUPS = os.environ.get("DQ_SLURM_NO_GROUPS") == "1"
GPU_PROBE_OUTPUT = "results/slurm_test/gpu_probe.txt"
TARGETS = ("all", GPU_PROBE_OUTPUT)
GPU_PROBE = f"""

# Test copy only: a GPU-tagged rule that records the GPU it was given.
rule gpu_probe:
    input:
        "results/report/filtration_table.csv",
    output:
        "{GPU_PROBE_OUTPUT}",
    resources:
        gpu=1,
    shell:
        "echo CUDA_VISIBLE_DEVICES=${{{{CUDA_VISIBLE_DEVICES:-unset}}}} > {{output}}"
"""
RUN_TIMEOUT_S = int(os.environ.get("DQ_SLURM_TIMEOUT_S", "1200"))
JOB_HEADER = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):$")
JOB_RESOURCES = re.compile(r"^\s*resources: (.*)$")


def workflow_copy(path: Path, port: int) -> Path:
    """A snapshot of the workflow files (copies, not links: the runs take minutes and must not see
    edits made to the checkout meanwhile), with the GPU probe rule added to the Snakefile, and the
    demo pairs whose images the server on `port` serves."""
    workdir = make_workdir(path, {**OVERRIDES, "demo": {"port": port}})
    write_demo_pairs(workdir, DEMO_ROWS, port)
    for link in [*workdir.iterdir(), *(workdir / "config").iterdir()]:
        if link.is_symlink():
            target = link.resolve()
            link.unlink()
            if target.is_dir():
                shutil.copytree(target, link)
            else:
                shutil.copy2(target, link)
    snakefile = workdir / "Snakefile"
    snakefile.write_text(snakefile.read_text() + GPU_PROBE)
    return workdir


def site_profile(folder: Path, partition: str) -> Path:
    """profiles/slurm with its two site lines edited, as a user does. DQ_SLURM_NO_GROUPS=1 drops
    the groups, to time the same run with one SLURM job per step and shard (docs/cluster.md)."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = partition
    profile["default-resources"]["slurm_account"] = ACCOUNT
    if NO_GROUPS:
        profile.pop("groups", None)
        profile.pop("group-components", None)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def declared_gpus(log: str) -> dict[str, int]:
    """Rule -> the most GPUs any of its jobs declared, from Snakemake's job listing."""
    gpus: dict[str, int] = {}
    rule = None
    for line in log.splitlines():
        if header := JOB_HEADER.match(line):
            rule = header.group(1)
        elif (resources := JOB_RESOURCES.match(line)) and rule is not None:
            match = re.search(r"(?:^|, )gpu=(\d+)", resources.group(1))
            gpus[rule] = max(gpus.get(rule, 0), int(match.group(1)) if match else 0)
            rule = None
    return gpus


def target_jobs(script: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of each Snakemake job a SLURM batch script runs."""
    command = next(line for line in script.splitlines() if "--target-jobs" in line)
    tokens = shlex.split(command)
    start = tokens.index("--target-jobs") + 1
    jobs = []
    for token in tokens[start:]:
        if token.startswith("--"):
            break
        rule, _, wildcards = token.partition(":")
        jobs.append((rule, wildcards))
    return jobs


@dataclass
class SlurmJob:
    fields: dict[str, str]
    jobs: list[tuple[str, str]]

    @property
    def rules(self) -> set[str]:
        return {rule for rule, _ in self.jobs}

    @property
    def gpu_requested(self) -> bool:
        return "gpu" in self.fields.get("TresPerJob", "")

    @property
    def gpu_allocated(self) -> bool:
        return "gpu" in self.fields.get("JOB_GRES", "(null)")


@dataclass
class Runs:
    slurm: Path
    local: Path
    slurm_log: str
    slurm_jobs: list[SlurmJob]
    cluster: Cluster
    timings: dict[str, float] = field(default_factory=dict)


def timeline(jobs: list[SlurmJob]) -> list[str]:
    """One line per SLURM job: submitted (s after the first submission), queued s, ran s, rules:
    where the run's time goes."""

    def seconds(job: SlurmJob, key: str) -> float:
        return datetime.fromisoformat(job.fields[key]).timestamp()

    timed = [
        j
        for j in jobs
        if all(
            j.fields.get(k, "Unknown") != "Unknown" for k in ("SubmitTime", "StartTime", "EndTime")
        )
    ]
    if not timed:
        return []
    first = min(seconds(j, "SubmitTime") for j in timed)
    lines = ["submit  queued  ran  rules (SLURM job)"]
    for job in sorted(timed, key=lambda j: seconds(j, "SubmitTime")):
        submit, start, end = (seconds(job, k) for k in ("SubmitTime", "StartTime", "EndTime"))
        lines.append(
            f"{submit - first:6.0f} {start - submit:7.0f} {end - start:4.0f}  "
            f"{','.join(sorted(job.rules))} ({job.fields['JobId']})"
        )
    return lines


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--directory",
        str(workdir),
        "--snakefile",
        str(workdir / "Snakefile"),
        "--configfile",
        str(workdir / "config" / "test.yaml"),
        *args,
    ]
    return cmd


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    timings = {}
    try:
        timings["apt_install_s"] = round(ensure_installed(), 1)
    except Unavailable as err:
        pytest.skip(str(err))
    base = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    with (
        serve(0, slow_seconds=SLOW_SECONDS) as server,
        single_node_cluster(base / "cluster") as cluster,
    ):
        slurm_dir = workflow_copy(base / "slurm", server.port)
        local_dir = workflow_copy(base / "local", server.port)
        timings["cluster_start_s"] = round(time.perf_counter() - started, 1)
        profile = site_profile(base / "profile", cluster.partition)
        started = time.perf_counter()
        # The local reference run goes alongside: the SLURM run leaves cores idle while jobs wait
        # in the queue and between status checks.
        with open(base / "local.log", "w") as local_log:
            local = subprocess.Popen(
                snakemake_command(
                    local_dir,
                    "--profile",
                    str(local_dir / "profiles/local"),
                    "--cores",
                    "2",
                    *TARGETS,
                ),
                stdout=local_log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        try:
            proc = subprocess.run(
                snakemake_command(
                    slurm_dir,
                    "--profile",
                    str(profile),
                    # Fast status polling for seconds-long test jobs (the profile's 10 s suits
                    # a real cluster's minutes-long ones).
                    "--slurm-init-seconds-before-status-checks",
                    "1",
                    # Half the node per job: both shards' chains run side by side instead of
                    # one multi-threaded group queueing behind the other's.
                    "--max-threads",
                    str(cluster.cpus // 2),
                    *TARGETS,
                ),
                capture_output=True,
                text=True,
                env=env,
                timeout=RUN_TIMEOUT_S,
            )
            # (subprocess.run kills snakemake on the timeout; stop() then cancels its jobs)
            timings["slurm_run_s"] = round(time.perf_counter() - started, 1)
            log = proc.stdout + proc.stderr
            if proc.returncode != 0:
                pytest.fail(
                    f"snakemake --executor slurm failed ({proc.returncode}):\n"
                    f"{log[-6000:]}\n{cluster.logs()}"
                )
            slurm_jobs = [
                SlurmJob(fields, target_jobs(cluster.batch_script(fields["JobId"])))
                for fields in cluster.jobs()
            ]
            local_rc = local.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if local.poll() is None:
                local.kill()
                local.wait()
    timings["slurm_and_local_runs_s"] = round(time.perf_counter() - started, 1)
    if local_rc != 0:
        pytest.fail(f"the local run failed:\n{(base / 'local.log').read_text()[-6000:]}")
    executed = sum(len(job.jobs) for job in slurm_jobs)
    print(f"\nSLURM test: {timings}; {len(slurm_jobs)} SLURM jobs ran {executed} Snakemake jobs")
    print("\n".join(timeline(slurm_jobs)))
    return Runs(slurm_dir, local_dir, log, slurm_jobs, cluster, timings)


def _frames(workdir: Path, pattern: str) -> dict[str, pl.DataFrame]:
    return {
        str(Path(p).relative_to(workdir)): pl.read_parquet(p)
        for p in sorted(glob.glob(str(workdir / pattern)))
    }


def test_outputs_are_identical_to_a_local_run(runs):
    table = "results/report/filtration_table.csv"
    assert (runs.slurm / table).read_bytes() == (runs.local / table).read_bytes()
    # Rows only: the summary's order among equal counts is not fixed.
    summary = "results/report/drop_reason_summary.csv"
    assert sorted((runs.slurm / summary).read_text().splitlines()) == sorted(
        (runs.local / summary).read_text().splitlines()
    )
    # Every step's kept and dropped rows of every shard, the final shards included.
    slurm, local = (_frames(d, "results/steps/*/*/*.parquet") for d in (runs.slurm, runs.local))
    assert slurm.keys() == local.keys()
    assert len([p for p in slurm if not p.endswith(".drops.parquet")]) >= 7
    for path, frame in slurm.items():
        expected = local[path]
        assert frame.sort("uid").equals(expected.sort("uid")), path
        assert frame["uid"].to_list() == expected["uid"].to_list(), path
    counts = sorted(glob.glob(str(runs.slurm / "results/steps/*/*/*.counts.json")))
    for path in counts:
        relative = Path(path).relative_to(runs.slurm)
        assert Path(path).read_text() == (runs.local / relative).read_text(), relative
    drops = [
        pl.read_parquet(d / "results/report/drop_reasons.parquet").sort("uid", "step")
        for d in (runs.slurm, runs.local)
    ]
    assert drops[0].equals(drops[1])


def test_gpu_rules_and_only_they_get_gpus_from_slurm(runs):
    gpus = declared_gpus(runs.slurm_log)
    assert gpus.get("gpu_probe") == 1, "the test's GPU rule was not listed with gpu=1"
    assert gpus.get("image_embeddings") == 1, "the embedding rule was not listed with gpu=1"
    assert runs.slurm_jobs, "slurmctld remembers no job"
    submitted = set()
    for job in runs.slurm_jobs:
        assert job.rules, job.fields["JobId"]
        wants_gpu = any(gpus.get(rule, 0) > 0 for rule in job.rules)
        label = f"SLURM job {job.fields['JobId']} ({sorted(job.rules)})"
        assert job.gpu_requested == wants_gpu, f"{label}: TresPerJob={job.fields.get('TresPerJob')}"
        assert job.gpu_allocated == wants_gpu, f"{label}: JOB_GRES={job.fields.get('JOB_GRES')}"
        submitted |= job.rules
    # Every rule Snakemake listed (bar the local target rule) ran as a SLURM job.
    assert submitted == set(gpus) - {"all"}
    probe = (runs.slurm / GPU_PROBE_OUTPUT).read_text().strip()
    assert probe in ("CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"), probe


def test_jobs_use_the_profile_partition_and_account(runs):
    for job in runs.slurm_jobs:
        assert job.fields["Partition"] == runs.cluster.partition
        assert job.fields["Account"] == ACCOUNT
        assert job.fields["JobState"] == "COMPLETED", job.fields


@pytest.mark.skipif(NO_GROUPS, reason="DQ_SLURM_NO_GROUPS=1 runs without the profile's groups")
def test_steps_of_a_shard_chain_share_one_slurm_job(runs):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    groups = profile.get("groups", {})
    grouped = [job for job in runs.slurm_jobs if len(job.jobs) > 1]
    assert grouped, "no SLURM job ran more than one step"
    for job in grouped:
        # One group, one shard (group-components: 1), each step once.
        assert len({groups.get(rule) for rule in job.rules}) == 1, job.rules
        assert len({wildcards for _, wildcards in job.jobs}) == 1, job.jobs
        assert len(job.rules) == len(job.jobs)
    for group in set(groups.values()):
        members = {rule for rule, name in groups.items() if name == group}
        chains = [job for job in grouped if job.rules <= members]
        shards = {job.jobs[0][1] for job in chains}
        assert len(chains) == len(shards) > 0, group
    assert len(runs.slurm_jobs) < sum(len(job.jobs) for job in runs.slurm_jobs)


def test_every_daemon_it_started_is_stopped(runs):
    assert runs.cluster.processes, "the cluster started no daemon"
    for name, proc in runs.cluster.processes.items():
        assert proc.poll() is not None, f"{name} (pid {proc.pid}) still runs"
    assert not (ETC_CONF.is_symlink() and str(runs.cluster.root) in os.readlink(ETC_CONF))
