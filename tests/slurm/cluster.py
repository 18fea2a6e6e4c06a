"""A throwaway single-node SLURM cluster on 127.0.0.1 with two fake GPUs, for the SLURM tests.

Installs Debian's slurm-wlm and munge when they are missing (needs root and apt-get), writes a
slurm.conf and gres.conf into a scratch folder, starts munged, slurmctld and slurmd in the
foreground as child processes (no systemd here) and stops exactly those processes afterwards.
What is known to work on our machines is in shared/notes/slurm-single-node.md.

    python -m tests.slurm.cluster up /tmp/dq-slurm    # start, print the partition, leave running
    python -m tests.slurm.cluster down /tmp/dq-slurm  # stop what `up` started

The client tools read /etc/slurm/slurm.conf (the executor's job-step plugin strips SLURM_CONF
before its nested srun), so that path is pointed at the scratch config for the cluster's lifetime
and put back as it was afterwards. A lock file serialises clusters: there is one /etc/slurm.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
ETC_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_DIRS = (Path("/run/munge"), Path("/var/lib/munge"), Path("/var/log/munge"))
LOCK = Path("/tmp/dq-slurm-cluster.lock")
PARTITION = "dqtest"
GPUS = 2
# The node advertises more memory than the machine may have (SlurmdParameters=config_overrides):
# memory is bookkeeping here, nothing enforces it (task/none), and a profile's per-rule mem_mb must
# not leave a job pending forever on a small CI machine: the largest request in profiles/slurm
# (cross-batch dedup, sized for the paper's run) must fit.
NODE_MEMORY_MB = 1_048_576
# Jobs stay visible to squeue and `scontrol show job` this long after they end: the executor's
# squeue status command needs >= 120 s, and the test reads the jobs back after the run.
MIN_JOB_AGE_S = 900
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_:/]*$")


class Unavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why."""


def missing_binaries() -> list[str]:
    needed = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
    return [name for name in needed if shutil.which(name) is None]


def ensure_installed(log=print) -> float:
    """Install slurm-wlm and munge with apt-get unless present; returns the seconds it took."""
    if os.geteuid() != 0:
        raise Unavailable("the test cluster needs root (apt-get, mknod, daemons as SlurmUser=root)")
    if not missing_binaries():
        return 0.0
    if shutil.which("apt-get") is None:
        raise Unavailable("SLURM is not installed and apt-get is not available")
    started = time.perf_counter()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Package scripts must not try to start services: we start the daemons ourselves.
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        ):
            log(" ".join(cmd))
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise Unavailable(
                    f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
                )
    finally:
        if added_policy:
            policy.unlink()
    if missing_binaries():
        raise Unavailable(f"apt-get installed {PACKAGES} but {missing_binaries()} are missing")
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    root: Path
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    # Twice the machine's cores (config_overrides lets the node claim them): a test job spends much
    # of its life starting Snakemake and waiting on files, so two per core keep the cores busy.
    cpus: int = field(default_factory=lambda: 2 * max(2, os.cpu_count() or 2))
    partition: str = PARTITION
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    reused_munge: bool = False
    _etc_backup: Path | None = None
    _etc_linked: bool = False
    _lock: object = None

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def ctld_log(self) -> Path:
        return self.root / "log" / "slurmctld.log"

    def write_config(self) -> None:
        etc, state, spool, log, dev = (
            self.root / d for d in ("etc", "state", "spool", "log", "dev")
        )
        for folder in (etc, state, spool, log, dev):
            folder.mkdir(parents=True, exist_ok=True)
        # Character devices stand in for GPUs: slurmd rejects regular files and file-less GPUs.
        for index in range(GPUS):
            device = dev / f"nvidia{index}"
            if not device.exists():
                os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))
        (etc / "gres.conf").write_text(f"Name=gpu Type=fake File={dev}/nvidia[0-{GPUS - 1}]\n")
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=dqtest",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SlurmdParameters=config_overrides",
                    "GresTypes=gpu",
                    f"MinJobAge={MIN_JOB_AGE_S}",
                    "ReturnToService=2",
                    "SchedulerParameters=sched_interval=1",
                    "MpiDefault=none",
                    "MailProg=/bin/true",
                    f"StateSaveLocation={state}",
                    f"SlurmdSpoolDir={spool}",
                    f"SlurmctldPidFile={self.root}/slurmctld.pid",
                    f"SlurmdPidFile={self.root}/slurmd.pid",
                    f"SlurmctldLogFile={self.ctld_log}",
                    f"SlurmdLogFile={log}/slurmd.log",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={NODE_MEMORY_MB} Gres=gpu:fake:{GPUS} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _link_etc(self) -> None:
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        if ETC_CONF.exists() or ETC_CONF.is_symlink():
            self._etc_backup = ETC_CONF.with_name(f"slurm.conf.dq-backup-{os.getpid()}")
            ETC_CONF.rename(self._etc_backup)
        ETC_CONF.symlink_to(self.conf)
        self._etc_linked = True

    def _unlink_etc(self) -> None:
        if self._etc_linked and ETC_CONF.is_symlink():
            ETC_CONF.unlink()
        if self._etc_backup is not None and self._etc_backup.exists():
            self._etc_backup.rename(ETC_CONF)
        self._etc_linked = False

    def _start_munge(self) -> None:
        if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
            self.reused_munge = True  # a munged is already serving; not ours to stop
            return
        user = pwd.getpwnam("munge")
        for folder in MUNGE_DIRS:
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, user.pw_uid, user.pw_gid)
        folder_modes = {
            Path("/run/munge"): 0o755,
            Path("/var/lib/munge"): 0o700,
            Path("/var/log/munge"): 0o700,
        }
        for folder, mode in folder_modes.items():
            folder.chmod(mode)
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
        os.chown(MUNGE_KEY, user.pw_uid, user.pw_gid)
        MUNGE_KEY.chmod(0o400)
        os.chown(MUNGE_KEY.parent, user.pw_uid, user.pw_gid)
        MUNGE_KEY.parent.chmod(0o700)

        def as_munge():
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

        with open(self.root / "log" / "munged.err", "w") as err:
            self.processes["munged"] = subprocess.Popen(
                [shutil.which("munged"), "--foreground"],
                preexec_fn=as_munge,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self._wait(
            lambda: (
                subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode
                == 0
            ),
            "munged",
            20,
        )

    def _start(self, name: str, *args: str) -> None:
        with open(self.root / "log" / f"{name}.err", "w") as err:
            self.processes[name] = subprocess.Popen(
                [shutil.which(name), "-D", "-f", str(self.conf), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(os.environ, SLURM_CONF=str(self.conf)),
            )

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise Unavailable(
                        f"{name} exited with {proc.returncode} while waiting for "
                        f"{what}; logs in {self.root / 'log'}:\n{self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.2)
        raise Unavailable(
            f"timed out waiting for {what}; logs in {self.root / 'log'}:\n{self.logs()}"
        )

    def node_state(self) -> str:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
        return proc.stdout.strip()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(LOCK, "w")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise Unavailable(f"another test cluster holds {LOCK}") from None
        self._lock = lock
        self.write_config()
        self._link_etc()
        self._start_munge()
        self._start("slurmctld", "-i")
        self._wait(
            lambda: (
                subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout.count(
                    "UP"
                )
                > 0
            ),
            "slurmctld",
            30,
        )
        self._start("slurmd")
        self._wait(lambda: self.node_state() in ("idle", "mixed", "allocated"), "an idle node", 30)
        (self.root / "pids.json").write_text(
            json.dumps({name: proc.pid for name, proc in self.processes.items()})
        )

    def stop(self) -> None:
        """Cancel leftover jobs, then stop the daemons this object started (never others)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--partition", self.partition], capture_output=True, timeout=30
            )
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._unlink_etc()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def logs(self, tail: int = 1500) -> str:
        texts = []
        for path in sorted((self.root / "log").glob("*")):
            texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(texts)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers, as `scontrol show job --oneliner` fields."""
        proc = subprocess.run(
            ["scontrol", "show", "job", "--details", "--oneliner"],
            capture_output=True,
            text=True,
            check=True,
        )
        return [
            parse_fields(line) for line in proc.stdout.splitlines() if line.startswith("JobId=")
        ]

    def batch_script(self, job_id: str) -> str:
        proc = subprocess.run(
            ["scontrol", "write", "batch_script", job_id, "-"],
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout


def parse_fields(line: str) -> dict[str, str]:
    """`Key=Value Key2=Value two` (values may hold spaces) into a dict."""
    fields: dict[str, str] = {}
    key = None
    for token in line.split(" "):
        name, sep, value = token.partition("=")
        if sep and FIELD_NAME.match(name):
            key = name
            fields[key] = value
        elif key is not None:
            fields[key] += " " + token
    return {name: value.strip() for name, value in fields.items()}


@contextlib.contextmanager
def single_node_cluster(root: Path) -> Iterator[Cluster]:
    """A started cluster, stopped on leaving: also on an exception, Ctrl-C or SIGTERM (a CI
    timeout), which would otherwise leave the daemons running."""

    def terminate(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    cluster = Cluster(Path(root))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__)
        return 2
    root = Path(argv[1])
    if argv[0] == "up":
        ensure_installed()
        cluster = Cluster(root)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        # Keep the daemons after this process exits; `down` stops them by their recorded ids.
        for proc in cluster.processes.values():
            proc.returncode = 0
        if cluster._lock is not None:
            cluster._lock.close()
        print(
            f"SLURM up: partition {cluster.partition}, node {cluster.node}, {GPUS} fake GPUs; "
            f"conf {cluster.conf}"
        )
        return 0
    pids = json.loads((root / "pids.json").read_text())
    subprocess.run(["scancel", "--partition", PARTITION], capture_output=True)
    for name in ("slurmd", "slurmctld", "munged"):
        if name in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[name], signal.SIGTERM)
    if ETC_CONF.is_symlink() and Path(os.readlink(ETC_CONF)) == root / "etc" / "slurm.conf":
        ETC_CONF.unlink()
    print("SLURM down")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
