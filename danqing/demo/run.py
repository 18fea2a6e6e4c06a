"""`make demo`: run the workflow on the demo corpus with the demo image server up.

    python -m danqing.demo.run --cores N [extra snakemake arguments ...]

Starts the demo image server on 127.0.0.1:<demo.port> (config/config.yaml), runs
`snakemake --cores N --profile profiles/local ... --configfile config/demo.yaml` in the repository
root (demo.yaml allows connections to 127.0.0.1), and stops the server
when snakemake ends, fails or is interrupted. It generates nothing itself: the workflow's
`demo_corpus` rule writes the corpus whose image URLs point at the server.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from danqing import config
from danqing.demo.server import serve

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "config" / "demo.yaml"
log = logging.getLogger("danqing.demo.run")


def demo_settings(config_path: Path) -> tuple[int, float]:
    """The server port, and how long the `timeout` case stalls: past every download attempt,
    under the config Snakemake will run (`config_path` with config/demo.yaml over it, validated,
    schema defaults filled)."""
    cfg = config.load(config_path, overrides=yaml.safe_load(DEMO_CONFIG.read_text()))
    download = cfg["filters"]["download_images"]
    attempts = int(download["retries"]) + 1
    slow_seconds = max(30.0, 3.0 * float(download["timeout"]) * attempts)
    return int(cfg["demo"]["port"]), slow_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: all)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="demo image server port (default: demo.port of the config)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=ROOT / "config" / "config.yaml",
        help="config file to read demo.port from",
    )
    args, snakemake_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    port, slow_seconds = demo_settings(args.config)
    port = args.port or port
    # Last: --configfile takes every word after it. config/demo.yaml lets the downloads reach
    # the server on 127.0.0.1.
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(args.cores),
        "--profile",
        "profiles/local",
        *snakemake_args,
        "--configfile",
        str(DEMO_CONFIG),
    ]
    with serve(port, slow_seconds=slow_seconds) as server:
        log.info("demo image server on %s; running %s", server.url, " ".join(command[2:]))
        process = subprocess.Popen(command, cwd=ROOT)
        # A `kill` of this process stops snakemake first, like Ctrl-C: downloads must never run
        # on after the server is gone (they would be recorded as failed).
        previous_handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return process.wait()
        except KeyboardInterrupt:
            log.info("interrupted: stopping snakemake (its jobs are marked incomplete)")
            try:
                process.terminate()
                return process.wait(timeout=60)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                process.kill()
                return process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
            if process.poll() is None:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
