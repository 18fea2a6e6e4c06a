"""The Snakemake report of a small demo run, opened and clicked through in headless Chromium.

Chromium is Debian's `chromium` package (`make browser` installs it; this test tries apt-get
itself when it is missing and skips, saying why, when it cannot). The browser is driven over the
DevTools protocol on a pipe (--remote-debugging-pipe), so no driver package is needed: for every
registered figure and table the test clicks its category, subcategory and "eye" button the way a
reader would, and checks that the browser decoded the figure's PNG at its real size, or shows the
table's HTML. Set DANQING_UPDATE_SCREENSHOT=1 to refresh docs/report_screenshot.png.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from tests.conftest import ROOT, make_workdir, run_snakemake

pytestmark = pytest.mark.e2e

REPORT_STEPS = ["language_control", "text_constraints"]
SCREENSHOT = ROOT / "docs" / "report_screenshot.png"


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "Chromium is not installed and apt-get cannot install it here (`make browser` "
            "installs Debian's chromium package)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if proc.returncode != 0:
            pytest.skip(
                f"could not install Debian's chromium ({' '.join(cmd)}): {proc.stderr[-500:]}"
            )
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium, but no `chromium` command is on PATH")
    return found


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe: commands are written to the
    browser's fd 3, replies and events read from its fd 4, each message ending with a NUL."""

    def __init__(self, binary: str, user_data_dir: Path, width: int = 1440, height: int = 900):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds():
            # Through fresh copies: dup2 onto the same number would keep close-on-exec set.
            read_copy, write_copy = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_copy, 3)
            os.dup2(write_copy, 4)

        self._stderr = open(user_data_dir.parent / "chromium.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float = 60, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, timeout: float = 60):
        result = self.call(
            "Runtime.evaluate",
            session=True,
            timeout=timeout,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:100]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"still false after {timeout}s: {expression}")

    def open(self, url: str, timeout: float = 120) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired", timeout)

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._stderr.close()


# Clicks a link of the report's navigation bar by its exact text (categories, subcategories).
CLICK_NAV = """(label => {
  const link = [...document.querySelectorAll('nav a')].find(a => a.textContent.trim() === label);
  if (!link) return false;
  link.click();
  return true;
})"""
GO_HOME = "document.querySelector('nav nav ol li a').click(), true"
ROWS = "document.querySelectorAll('nav table tbody tr').length"
CLICK_EYE = """(i => {
  document.querySelectorAll('nav table tbody tr')[i].querySelector('a[iconname=eye]').click();
  return true;
})"""
# What the content pane shows for result `path`, once it shows that result (null until then).
SHOWN = """(path => {
  if (app.state.resultPath !== path) return null;
  const content = document.querySelector('#app > div > div.grow');
  const img = content.querySelector('img');
  const frame = content.querySelector('iframe');
  const uri = results[path].data_uri;
  if (img && img.getAttribute('src') === uri)
    return img.complete && img.naturalWidth ? ['img', img.naturalWidth, img.naturalHeight] : null;
  if (frame && frame.getAttribute('src') === uri) return ['iframe', uri.slice(0, 30)];
  return null;
})"""
PREVIOUS = "app.state.resultPath || null"


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    workdir = make_workdir(
        tmp_path_factory.mktemp("report") / "wf", {"demo": {"rows": 700}, "steps": REPORT_STEPS}
    )
    if not (workdir / "report").exists():  # the captions and workflow description
        (workdir / "report").symlink_to(ROOT / "report")
    snakefile = (ROOT / "Snakefile").read_text()
    if "rules/figures.smk" not in snakefile or "rules/release.smk" not in snakefile:
        pytest.fail("the Snakefile does not include rules/release.smk and rules/figures.smk")
    run_snakemake(workdir)
    run_snakemake(workdir, "--report", "results/report.html")
    run_snakemake(workdir, "--report", "results/report.zip")
    return workdir


def final_frame(workdir: Path) -> pl.DataFrame:
    paths = sorted((workdir / "results" / "steps" / REPORT_STEPS[-1]).glob("*/s*[0-9].parquet"))
    return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")


def test_default_targets_release_and_figures(report_run):
    final = final_frame(report_run)
    manifest = json.loads((report_run / "results/release/dataset/manifest.json").read_text())
    assert manifest["rows"] == final.height and manifest["images"] is False
    card = (report_run / "results/release/dataset/README.md").read_text()
    assert "Text only" in card and f"{final.height:,} Chinese image-text pairs" in card
    figures = report_run / "results" / "figures"
    # Text-only run: no embeddings, no masked LM configured, so no Figs. 4b, 6, 7.
    assert sorted(p.name for p in figures.glob("*.png")) == [
        "fig11_wordcloud.png",
        "fig2_data_characteristics.png",
        "fig4a_semantic_density.png",
    ]
    # The numbers CSVs match the final shards they were made from.
    domains = pl.read_csv(figures / "table7_top_domains.csv")
    counts = final["domain"].value_counts()
    assert dict(zip(domains["source_domain"], domains["total_count"], strict=True)) == {
        d: c
        for d, c in zip(counts["domain"], counts["count"], strict=True)
        if d in set(domains["source_domain"])
    }
    assert (
        domains["total_count"].to_list()
        == sorted(counts["count"].to_list(), reverse=True)[: domains.height]
    )
    lengths = pl.read_csv(figures / "fig2_data_characteristics.csv").filter(
        pl.col("panel") == "caption_words"
    )
    assert lengths["count"].sum() == final.height
    by_length = final["word_count"].value_counts()
    assert {
        int(k): v for k, v in zip(lengths["bin_left"], lengths["count"], strict=True) if v
    } == dict(zip(by_length["word_count"], by_length["count"], strict=True))


def test_report_zip_holds_every_registered_file(report_run):
    with zipfile.ZipFile(report_run / "results" / "report.zip") as archive:
        names = archive.namelist()
    assert any(n.endswith("report.html") for n in names)
    for wanted in (
        "fig2_data_characteristics.png",
        "fig4a_semantic_density.png",
        "fig11_wordcloud.png",
        "table7_top_domains.html",
        "filtration_table.html",
        "drop_reasons.html",
        "release_files.html",
    ):
        assert any(n.endswith(wanted) for n in names), wanted


def test_report_renders_every_figure_in_chromium(report_run, tmp_path):
    binary = chromium_binary()
    profile = tmp_path / "profile"
    profile.mkdir()
    browser = Browser(binary, profile)
    try:
        browser.open((report_run / "results" / "report.html").resolve().as_uri())
        browser.wait_for(
            "typeof app !== 'undefined' && document.querySelectorAll('nav a').length > 5"
        )
        registered = browser.evaluate("""JSON.stringify(Object.fromEntries(Object.entries(results)
            .map(([path, r]) => [path, r.mime_type])))""")
        registered = json.loads(registered)
        tree = json.loads(
            browser.evaluate("""JSON.stringify(Object.fromEntries(
            Object.entries(categories).map(([c, subs]) => [c, Object.keys(subs)])))""")
        )
        assert "1. Filtration (Sec. 3.2)" in tree and "2. Data characteristics (Sec. 3.3)" in tree

        shown: dict[str, list] = {}
        screenshot = None
        for category, subcategories in tree.items():
            for subcategory in subcategories:
                browser.evaluate(GO_HOME)
                assert browser.evaluate(f"{CLICK_NAV}({json.dumps(category)})"), category
                if len(subcategories) > 1:
                    browser.wait_for(f"{CLICK_NAV}({json.dumps(subcategory)})")
                rows = browser.wait_for(ROWS)
                for i in range(rows):
                    previous = browser.evaluate(PREVIOUS)
                    browser.evaluate(f"{CLICK_EYE}({i})")
                    path = browser.wait_for(
                        f"app.state.resultPath !== {json.dumps(previous)} && app.state.resultPath"
                    )
                    shown[path] = browser.wait_for(f"{SHOWN}({json.dumps(path)})")
                    if path.endswith("fig11_wordcloud.png"):
                        screenshot = browser.screenshot()
    finally:
        browser.close()

    visual = {p for p, mime in registered.items() if mime in ("image/png", "text/html")}
    assert visual <= set(shown), f"never displayed: {visual - set(shown)}"
    for path in visual:
        if path.endswith(".png"):
            with Image.open(report_run / path) as image:
                assert shown[path] == ["img", *image.size], path  # decoded at its real size
        else:
            assert shown[path][0] == "iframe" and shown[path][1].startswith("data:text/html"), path

    assert screenshot is not None
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    assert image.size == (1440, 900)
    figure_area = image.crop((500, 150, 1300, 750))
    assert len(figure_area.getcolors(maxcolors=1 << 20)) > 200  # a rendered plot, not a blank page
    (tmp_path / "report_screenshot.png").write_bytes(screenshot)
    if os.environ.get("DANQING_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(screenshot)
