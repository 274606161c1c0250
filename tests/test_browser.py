"""Every notebook and lab in a real browser: JupyterLab (and Voilà) in headless Chromium.

Each notebook (found by glob, so new ones are covered) runs in a fresh page of one shared
JupyterLab: every cell but the ``teardown`` ones, then every control in its widget
outputs is clicked once (the ones that end the cluster last) and each click must change
the view; then the teardown cells run. What a notebook needs beyond that is in OVERRIDES.
The dashboards open as Binder's ``?urlpath=voila/render/...`` does. Screenshots and a log
of the clicks go to ``test-artifacts/browser/`` (or ``$WORKBENCH_ARTIFACTS/browser``);
the page side is ``browser_driver.js``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil
import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:          # the fixture skips (or fails in CI) with the reason
    PlaywrightTimeout = TimeoutError

REPO = Path(__file__).resolve().parent.parent
TOUR = "notebooks/00-tour.ipynb"
NOTEBOOKS = sorted(str(path.relative_to(REPO)) for pattern in ("notebooks/*.ipynb", "labs/*.ipynb")
                   for path in REPO.glob(pattern))
# The notebooks that double as dashboards (Binder's ?urlpath=voila/render/...).
DASHBOARDS = ["notebooks/00-tour.ipynb", "notebooks/01-switchboard.ipynb"]
ARTIFACTS = Path(os.environ.get("WORKBENCH_ARTIFACTS", REPO / "test-artifacts")) / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 1000}

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


@dataclass(frozen=True)
class Drive:
    """What one notebook needs beyond the generic drive (keyed by path in OVERRIDES)."""
    # Called with the page once the cells ran, before the controls are clicked; then
    # ``checks`` once every control was clicked, before the teardown cells run.
    steps: tuple[Callable, ...] = ()
    checks: tuple[Callable, ...] = ()
    # CSS of further controls whose effect ends the cluster: clicked last.
    last: tuple[str, ...] = ()
    # CSS of controls never clicked (say why beside the entry).
    skip: tuple[str, ...] = ()
    # Labels (descriptions) of settings read by a later click, a form's fields: a change
    # of their own value is their whole visible effect; the click reading them must show.
    settings: tuple[str, ...] = ()
    run_timeout: float = 240
    click_timeout: float = 30


DRIVER_JS = (Path(__file__).parent / "browser_driver.js").read_text()


# -- processes ---------------------------------------------------------------------------
def require_playwright():
    """Playwright's sync API, and Chromium: missing is a failure in CI, a skip elsewhere."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is required in CI (pip install -e '.[test]')")
        pytest.skip("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    return sync_playwright


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

    def __init__(self, home: Path, root: Path = REPO):
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
                   f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
                   "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   # Checkpoints into the temp dir, not notebooks/.ipynb_checkpoints.
                   f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log_path = home / "jupyter.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=root, env=env, stdout=self._log,
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

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """Every kernel this server lists, shut down (a closed page leaves them running)."""
        for kernel in self.api("api/kernels"):
            self.api(f"api/kernels/{kernel['id']}", method="DELETE")

    def kernels(self) -> list[psutil.Process]:
        """The kernels running under this server (Lab's and Voilà's alike)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        running = []
        for child in children:
            try:
                if "ipykernel_launcher" in " ".join(child.cmdline()):
                    running.append(child)
            except psutil.NoSuchProcess:
                pass
        return running

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


@pytest.fixture(scope="module")
def browser():
    sync_playwright = require_playwright()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    server = JupyterLab(tmp_path_factory.mktemp("jupyter"))
    yield server
    leftovers = server.stop()
    assert not leftovers, f"processes left running after jupyter lab stopped: {leftovers}"


@pytest.fixture
def page(browser, lab):
    """A fresh page with the driver, the console and "leave the page?" dialogs handled;
    afterwards its kernels are shut down, and none may be left running."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(DRIVER_JS)
    page = context.new_page()
    page.console_lines = []
    page.on("console", lambda m: page.console_lines.append((m.type, m.text)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield page
    finally:
        context.close()
        lab.shut_down_kernels()
        wait_until(lambda: not lab.kernels(), timeout=60,
                   what="the notebook's kernel to stop after its page closed")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def screenshot(page, name: str, css: str = ".jp-OutputArea-output .jupyter-widgets") -> None:
    """The viewport, scrolled to the first ``css`` element (the notebook scrolls inside
    the page, so a full-page shot would show no more)."""
    first = page.locator(css).first
    if first.count():
        first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifact(name)))


# -- driving a notebook ------------------------------------------------------------------
# Console lines that mean a widget or chart failed to show (each seen once in the tour).
VIEW_FAILURES = ("inconsistent lengths", "Failed to create view", "Could not create a view")


def open_notebook(page, lab: JupyterLab, path: str) -> None:
    """Open ``path`` in a workspace of its own (no tabs restored from an earlier page)."""
    workspace = re.sub(r"\W+", "-", path)
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{path}"))
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    page.evaluate("window.jupyterapp.shell.collapseLeft(); wbLab.watch()")


def run_cells(page, *, teardown: bool, timeout: float) -> None:
    """Run the code cells with (or without) the ``teardown`` tag, top to bottom, until the
    kernel is idle; fail on the first cell that raised."""
    page.evaluate("teardown => { wbLab.run(teardown) }", teardown)
    page.wait_for_function("() => window.wbRun && window.wbRun.done", timeout=timeout * 1000,
                           polling=500)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    failed = page.evaluate("wbLab.errorOutputs()")
    assert not failed, f"a cell raised: {failed}"
    page.wait_for_function("() => wbDrive.loadingWidgets() === 0", timeout=60_000)


def act_on(page, control: dict, timeout: float) -> bool:
    """Click, choose or slide; False if the control turned off before it could be used
    (a snapshot from the kernel arrived between finding it and clicking it)."""
    target = page.locator("[data-wb-target]")
    if not target.count() or target.is_disabled():
        return False
    kind = control["kind"]
    try:
        if kind == "select":
            target.select_option(index=(control["selected"] + 1) % control["options"],
                                 timeout=timeout * 1000)
        elif kind == "slider":
            at_max = control["now"] is not None and control["now"] == control["max"]
            target.press("ArrowLeft" if at_max else "ArrowRight", timeout=timeout * 1000)
        else:
            target.click(timeout=timeout * 1000)
    except PlaywrightTimeout:
        if target.count() and target.is_enabled():
            raise
        return False
    return True


def wait_kernels_idle(page, lab: JupyterLab, *, in_lab: bool, timeout: float) -> None:
    if in_lab:
        page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000)
    else:                       # Voilà's page has no handle on its kernel: ask the server
        wait_until(lambda: all(k["execution_state"] == "idle" for k in lab.api("api/kernels")),
                   timeout=timeout, what="the dashboard's kernel to be idle")


def click_every_control(page, lab: JupyterLab, drive: Drive, clicks: list[dict], *,
                        name: str, in_lab: bool) -> None:
    """Click every enabled control once, the cluster-ending ones last; after each click
    the view must change (text, widgets or a still chart) within ``drive.click_timeout``.
    A control that is off while the kernel is busy gets a bounded wait to come back on."""
    page.evaluate("wbDrive.calibrate()")
    screenshot(page, f"{name}-1-ran.png")
    page.evaluate("wbDrive.calibrate()")          # a screenshot apart: live charts moved
    rules = [list(drive.last), list(drive.skip)]
    for phase in ("main", "last"):
        while True:
            assert len(clicks) < 200, "the controls keep multiplying"
            control = page.evaluate("args => wbDrive.next(...args)",
                                    [phase, *rules, list(drive.settings)])
            if control is None and page.evaluate("args => wbDrive.waiting(...args)",
                                                 [phase, *rules]):
                try:
                    page.wait_for_function("args => wbDrive.hasReady(...args)",
                                           arg=[phase, *rules], timeout=15_000)
                except PlaywrightTimeout:
                    pass                 # off for good: listed as never clicked
                else:
                    continue
            if control is None:
                break
            setting = control["setting"]
            before = page.evaluate("setting => wbDrive.fingerprint(setting)", setting)
            started = time.monotonic()
            if not act_on(page, control, drive.click_timeout):
                page.evaluate("wbDrive.retry()")
                continue
            try:
                page.wait_for_function("([before, setting]) => wbDrive.fingerprint(setting) "
                                       "!== before", arg=[before, setting],
                                       timeout=drive.click_timeout * 1000, polling=250)
            except PlaywrightTimeout:
                screenshot(page, f"{name}-unchanged.png", "[data-wb-target]")
                pytest.fail(f"{control['kind']} {control['label']!r} {control['css']}: the view "
                            f"did not change within {drive.click_timeout} s of the click")
            wait_kernels_idle(page, lab, in_lab=in_lab, timeout=drive.run_timeout)
            clicks.append({**{key: control[key] for key in ("kind", "label", "css", "setting")},
                           "phase": phase, "seconds": round(time.monotonic() - started, 2)})


def save_record(page, name: str, clicks: list[dict], **more) -> None:
    """What was clicked, how long each took to show, what was never on, what failed."""
    artifact(f"{name}-clicks.json").write_text(json.dumps({
        "clicks": clicks, "never_clicked": page.evaluate("wbDrive.unclicked()"), **more,
        "console_errors": [text for kind, text in page.console_lines if kind == "error"],
    }, indent=1))


def view_failures(page) -> list[str]:
    return [text for _, text in page.console_lines if any(f in text for f in VIEW_FAILURES)]


@pytest.mark.browser
@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_in_jupyterlab(page, lab, path):
    """Run all but the teardown cells, click every control once (each click changes the
    view), run the teardown: no cell, callback or chart may fail on the way."""
    drive = OVERRIDES.get(path, Drive())
    name, clicks, record = Path(path).stem, [], {}
    try:
        open_notebook(page, lab, path)
        started = time.monotonic()
        run_cells(page, teardown=False, timeout=drive.run_timeout)
        record["run_seconds"] = round(time.monotonic() - started, 1)
        for step in drive.steps:
            step(page)
        click_every_control(page, lab, drive, clicks, name=name, in_lab=True)
        for check in drive.checks:
            check(page)
        screenshot(page, f"{name}-2-clicked.png")
        run_cells(page, teardown=True, timeout=drive.run_timeout)
    finally:
        record["kernel_errors"] = errors = page.evaluate("window.wbLab.errors")
        save_record(page, name, clicks, **record)
    assert not errors, "the kernel reported errors:\n" + "\n\n".join(errors)
    failures = view_failures(page)
    assert not failures, f"{len(failures)} views failed in the page, the first: {failures[0]}"


@pytest.mark.browser
@pytest.mark.parametrize("path", DASHBOARDS)
def test_dashboard_in_voila(page, lab, path):
    """The notebook as Binder's ``?urlpath=voila/render/...`` shows it: outputs without a
    line of code, widgets live, and every control changes the view."""
    name = f"voila-{Path(path).stem}"
    page.goto(lab.url(f"voila/render/{path}"), wait_until="commit")
    page.wait_for_load_state("load", timeout=300_000)        # Voilà sends it once run
    # the outputs' widgets are rendered after "load": wait for the controls to exist and
    # for no "Loading widget..." to be left (a check of the second alone can come first)
    page.wait_for_function(
        "() => wbDrive.controls().length > 0 && wbDrive.loadingWidgets() === 0",
        timeout=120_000)
    shown = page.inner_text("body")
    screenshot(page, f"{name}-0-loaded.png", ".jp-OutputArea-output")
    for failure in ("There was an error when executing cell", "Traceback",
                    "Error displaying widget"):   # a teardown cell closed it: Voilà runs all
        assert failure not in shown, f"{failure!r} on the dashboard"
    assert page.evaluate("wbDrive.controls().length"), "no control on the dashboard"
    failures = view_failures(page)
    assert not failures, f"{len(failures)} views failed in the page, the first: {failures[0]}"
    code = page.locator(".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .cm-editor, .jp-Editor")
    assert code.count() == 0, [code.nth(i).evaluate("el => el.outerHTML.slice(0, 300)")
                               for i in range(min(code.count(), 3))]
    cells = json.loads((REPO / path).read_text())["cells"]
    first_lines = [line for cell in cells if cell["cell_type"] == "code"
                   for line in "".join(cell["source"]).splitlines()[:1] if len(line) > 12]
    assert first_lines and not [line for line in first_lines if line in shown]

    clicks = []
    try:
        click_every_control(page, lab, OVERRIDES.get(path, Drive()), clicks, name=name,
                            in_lab=False)
        screenshot(page, f"{name}-2-clicked.png")
    finally:
        save_record(page, name, clicks)
    assert clicks, "no control could be clicked on the dashboard"
    failures = view_failures(page)
    assert not failures, f"{len(failures)} views failed in the page, the first: {failures[0]}"


# -- the tour: what a reader once saw go wrong, checked on the way ------------------------
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


def tour_partition_twice_then_reload(page):
    """Reproductions, each from the page as a reader saw it:
    * Partition -> Heal -> Partition -> Heal left the chart's partition source with 2
      start values and 3 end values (the second window never shaded) and the console
      with hundreds of "data source has columns of inconsistent lengths" warnings;
    * after a reload with the kernel still running, running the chart cell again failed
      with "Failed to create view for 'BokehView' ... reading 'require'";
    * Run All closed the cluster in its last cell, so every button was dead afterwards.
    """
    from playwright.sync_api import expect

    expect(page.locator(".wb-node-card")).to_have_count(3)
    expect(page.locator(".jp-OutputArea-output", has_text="VERDICT")).to_be_visible()
    expect(page.locator(".wb-close-cluster")).to_be_enabled()
    page.locator(".wb-control-panel").evaluate("el => el.scrollIntoView()")
    cards = page.locator(".wb-node-card")
    statuses = cards.locator(".wb-node-status").all_text_contents()
    assert "replica" in statuses, statuses
    replica = cards.nth(statuses.index("replica"))
    name = replica.locator("b").first.inner_text()
    replica.locator(".wb-kill").click()
    expect(replica.locator(".wb-node-status")).to_contain_text("KILLED", timeout=10_000)
    expect(page.locator(".wb-event-log")).to_contain_text(f"{name} crashed", timeout=10_000)

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
    page.screenshot(path=str(artifact("00-tour-partitioned-twice.png")))

    # Reload with the kernel running, and show the charts again: no set-up cell.
    errors = page.evaluate("wbLab.errors")
    assert not errors, f"the kernel reported errors before the reload: {errors}"
    reloaded = len(page.console_lines)
    page.reload()
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("window.jupyterapp.shell.collapseLeft(); wbLab.watch()")
    page.evaluate("text => wbLab.runCellWith(text)", "viz.show(cluster)")
    expect(page.locator(".wb-node-card")).to_have_count(3, timeout=30_000)
    expect(page.locator(".wb-offset-chart canvas").first).to_be_attached(timeout=30_000)
    page.evaluate("text => wbLab.runCellWith(text)", "viz.CloseButton(cluster)")
    expect(page.locator(".wb-close-cluster")).to_be_enabled(timeout=30_000)
    page.wait_for_function(KERNEL_IDLE, timeout=30_000)
    failed_views = [text for _, text in page.console_lines[reloaded:]
                    if "Failed to create view" in text or "reading 'require'" in text]
    assert not failed_views, failed_views


def tour_closed(page):
    """The clean-up button closed the cluster: every card says so, every button is off,
    and the log calls it a shutdown, not a crash."""
    from playwright.sync_api import expect

    expect(page.locator(".wb-close-cluster")).to_have_text("The cluster is closed",
                                                           timeout=15_000)
    expect(page.locator(".wb-node-card .wb-node-status")).to_have_text(["CLOSED"] * 3,
                                                                       timeout=15_000)
    for css in (".wb-kill", ".wb-power-kill", ".wb-restart", ".wb-partition-primary",
                ".wb-heal"):
        for button in page.locator(css).all():
            expect(button).to_be_disabled()
    events = [line for line in page.locator(".wb-event-log").inner_text().splitlines()
              if re.match(r"\d\d:\d\d", line)]
    assert events and "shut down on purpose (not a crash)" in events[0], events[:3]


# -- per notebook: only what the generic drive cannot know -------------------------------
OVERRIDES: dict[str, Drive] = {
    TOUR: Drive(steps=(tour_partition_twice_then_reload,), checks=(tour_closed,)),
    # The modes, schedule and duration are read when Run is pressed.
    "notebooks/03-shootout.ipynb": Drive(settings=("modes", "schedule", "duration")),
}
