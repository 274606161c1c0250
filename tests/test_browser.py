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


@pytest.mark.browser
def test_tour_in_jupyterlab_kill_button(tmp_path):
    sync_playwright, expect = require_playwright()
    lab = JupyterLab(tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            console_errors = []
            page.on("console", lambda m: console_errors.append(m.text)
                    if m.type == "error" else None)
            page.goto(lab.url(f"lab/tree/{TOUR}"))
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)

            # Every cell but the last: that one closes the cluster the buttons act on.
            page.evaluate("""async () => {
                const panel = window.jupyterapp.shell.currentWidget;
                panel.content.activeCellIndex = panel.content.widgets.length - 1;
                await window.jupyterapp.commands.execute('notebook:run-all-above');
            }""")
            expect(page.locator(".wb-node-card")).to_have_count(3, timeout=30_000)
            expect(page.locator(".jp-OutputArea-output", has_text="VERDICT")).to_be_visible(
                timeout=60_000)
            expect(page.locator(".wb-offset-chart canvas").first).to_be_attached()

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

            page.screenshot(path=str(tmp_path / "tour.png"))

            # Now the teardown cell, so the kernel stops the cluster before the server goes.
            page.evaluate("""async () => {
                const panel = window.jupyterapp.shell.currentWidget;
                panel.content.activeCellIndex = panel.content.widgets.length - 1;
                await window.jupyterapp.commands.execute('notebook:run-cell');
            }""")
            page.wait_for_function(KERNEL_IDLE, timeout=30_000)
            browser.close()
        print("screenshot:", tmp_path / "tour.png")
        print("console errors:", console_errors)
    finally:
        leftovers = lab.stop()
    assert not leftovers, f"processes left running after jupyter lab stopped: {leftovers}"
