"""The tour in a real browser: JupyterLab in headless Chromium, widgets clicked for real."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
TOUR = "notebooks/00-tour.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

# Lab settings for an offline, unattended run: no news toast over the widgets; no
# autosave (it would write the executed notebook, outputs and all, into the repo); and
# every cell rendered, not only those scrolled into view.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

KERNEL_IDLE = """() => { try {
    return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'
} catch (e) { return false } }"""


def require_playwright():
    """Playwright's sync API, and Chromium: missing is a failure in CI, a skip elsewhere."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is required in CI (pip install -e '.[test]')")
        pytest.skip("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return sync_playwright, expect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class JupyterLab:
    """A private ``jupyter lab`` on 127.0.0.1, stopped by PID with everything it started."""

    def __init__(self, home: Path):
        self.port = free_port()
        self.token = secrets.token_hex(16)
        for name, values in LAB_SETTINGS.items():
            path = home / "lab-settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {**os.environ,
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces")}
        jupyter = Path(sys.executable).with_name("jupyter")
        command = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1",
                   f"--port={self.port}", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={REPO}", "--LabApp.expose_app_in_browser=True",
                   "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   # Checkpoints into the temp dir, not notebooks/.ipynb_checkpoints.
                   f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log_path = home / "jupyter.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=60, what="jupyter lab to answer")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"jupyter lab exited early:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def stop(self) -> list[str]:
        """Stop the server by PID; return what was still running afterwards (then killed)."""
        try:
            started = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            started = []
        self.process.send_signal(signal.SIGINT)    # a clean shutdown stops its kernels too
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        _, alive = psutil.wait_procs(started, timeout=10)
        leftovers = [f"{p.pid} {p.name()}" for p in alive]
        for process in alive:
            process.kill()
        self._log.close()
        return leftovers


# The partition windows of every Bokeh document in the page: the offset chart's source
# is the one whose columns are exactly "start" and "end".
PAGE_PARTITION_WINDOWS = """() => {
    const found = [];
    for (const doc of (window.Bokeh ? window.Bokeh.documents : [])) {
        for (const model of doc._all_models.values()) {
            if (model.type !== "ColumnDataSource") continue;
            const data = model.data instanceof Map ? Object.fromEntries(model.data) : model.data;
            if (Object.keys(data).sort().join(",") === "end,start")
                found.push({start: Array.from(data.start), end: Array.from(data.end)});
        }
    }
    return found;
}"""

RUN_CELL_WITH = """async (text) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const index = panel.content.widgets.findIndex(
        cell => cell.model.sharedModel.getSource().includes(text));
    if (index < 0) throw new Error(`no cell contains ${text}`);
    panel.content.activeCellIndex = index;
    await window.jupyterapp.commands.execute('notebook:run-cell');
    return index;
}"""


@pytest.mark.browser
def test_tour_in_jupyterlab(tmp_path):
    """The tour in a real page: Run All, click, partition twice, reload, clean up.

    Reproductions, each from the page as a reader saw it:
    * Partition -> Heal -> Partition -> Heal left the chart's partition source with 2
      start values and 3 end values (the second window never shaded) and the console
      with hundreds of "data source has columns of inconsistent lengths" warnings;
    * after a reload with the kernel still running, running the chart cell again failed
      with "Failed to create view for 'BokehView' ... reading 'require'";
    * Run All closed the cluster in its last cell, so every button was dead afterwards.
    """
    sync_playwright, expect = require_playwright()
    lab = JupyterLab(tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            console = []
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("dialog", lambda dialog: dialog.accept())   # "leave the page?" on reload
            page.goto(lab.url(f"lab/tree/{TOUR}"))
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)

            # Run All: the last cell only shows the clean-up button; the cluster stays up.
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            expect(page.locator(".wb-node-card")).to_have_count(3, timeout=30_000)
            expect(page.locator(".jp-OutputArea-output", has_text="VERDICT")).to_be_visible(
                timeout=60_000)
            expect(page.locator(".wb-offset-chart canvas").first).to_be_attached()
            expect(page.locator(".wb-close-cluster")).to_be_enabled(timeout=30_000)
            page.wait_for_function(KERNEL_IDLE, timeout=30_000)

            page.locator(".wb-control-panel").evaluate("el => el.scrollIntoView()")
            cards = page.locator(".wb-node-card")
            statuses = cards.locator(".wb-node-status").all_text_contents()
            assert "replica" in statuses, statuses
            replica = cards.nth(statuses.index("replica"))
            name = replica.locator("b").first.inner_text()
            replica.locator(".wb-kill").click()
            expect(replica.locator(".wb-node-status")).to_contain_text("KILLED", timeout=10_000)
            expect(page.locator(".wb-event-log")).to_contain_text(f"{name} crashed",
                                                                   timeout=10_000)

            # The second partition of the run (the tour made the first), then heal.
            network = page.locator(".wb-cluster-status")
            page.locator(".wb-partition-primary").click()
            expect(network).to_contain_text("partitioned", timeout=10_000)
            page.locator(".wb-heal").click()
            expect(network).to_contain_text("whole", timeout=10_000)
            page.wait_for_function(f"""() => {{
                const [w] = ({PAGE_PARTITION_WINDOWS})();
                return w !== undefined && w.start.length === 2 && w.end.length === 2;
            }}""", timeout=10_000)
            [windows] = page.evaluate(PAGE_PARTITION_WINDOWS)
            assert all(s < e for s, e in zip(windows["start"], windows["end"])), windows
            page.screenshot(path=str(tmp_path / "tour.png"))

            # Reload with the kernel running, and show the charts again: no set-up cell.
            reloaded = len(console)
            page.reload()
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate(RUN_CELL_WITH, "viz.show(cluster)")
            expect(page.locator(".wb-node-card")).to_have_count(3, timeout=30_000)
            expect(page.locator(".wb-offset-chart canvas").first).to_be_attached(
                timeout=30_000)
            page.wait_for_function(KERNEL_IDLE, timeout=30_000)
            failed_views = [text for _, text in console[reloaded:]
                            if "Failed to create view" in text or "reading 'require'" in text]
            assert not failed_views, failed_views

            # The clean-up cell: its button closes the cluster; every control turns off.
            page.evaluate(RUN_CELL_WITH, "viz.CloseButton(cluster)")
            page.locator(".wb-close-cluster").click()
            expect(page.locator(".wb-close-cluster")).to_have_text("The cluster is closed",
                                                                   timeout=10_000)
            expect(page.locator(".wb-node-card .wb-node-status")).to_have_text(
                ["CLOSED"] * 3, timeout=10_000)
            for css in (".wb-kill", ".wb-power-kill", ".wb-restart", ".wb-partition-primary",
                        ".wb-heal"):
                for button in page.locator(css).all():
                    expect(button).to_be_disabled()
            log = page.locator(".wb-event-log")
            expect(log).to_contain_text("shut down on purpose (not a crash)")
            assert "crashed" not in log.inner_text()
            page.screenshot(path=str(tmp_path / "tour-closed.png"))
            page.wait_for_function(KERNEL_IDLE, timeout=30_000)
            browser.close()
        print("screenshots:", tmp_path / "tour.png", tmp_path / "tour-closed.png")
        print("console errors:", [text for kind, text in console if kind == "error"])
    finally:
        leftovers = lab.stop()
    assert not leftovers, f"processes left running after jupyter lab stopped: {leftovers}"
    inconsistent = [text for _, text in console if "inconsistent lengths" in text]
    assert not inconsistent, f"{len(inconsistent)} warnings, the first: {inconsistent[0]}"
