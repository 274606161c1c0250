"""The ``raft`` mode (3 nodes, the Raft log fsynced on every node) next to pysyncobj.

What is measured, in one run, the two setups' order rotated run by run:

    (w) ``workbench cluster --mode raft --nodes 3``: one process, its three nodes on one
        event loop, the mode's defaults (every node fsyncs its Raft log before it
        acknowledges an entry). ``redis-benchmark -t set -c 1/10/50`` against the leader
        (found by ``INFO raft``: ``raft_role:leader``), and one redis-py client's SET round
        trip (p50/p99). A SET's reply is held by the commit gate until a majority has
        persisted its entry, so every ``+OK`` is a committed write and redis-benchmark's
        requests/s are committed writes/s. Error replies are asked for (``-e``) and counted.
    (p) pysyncobj 0.3.17, the best-known Raft library in Python: a 3-node key-value store
        (``pysyncobj_kv.py``), in this one process, as the issue asks -- so its nodes share
        one GIL, as the workbench's share one event loop. pysyncobj has no fsync: its
        figures are those of a store whose committed writes live in memory. 1, 10 and 50
        writes in flight, each next write started when the previous one is committed
        (as redis-benchmark's connections do), for a fixed time, with two drivers
        (caller threads blocking on ``sync=True``; one callback chain per write in flight)
        and several settings: its defaults (batching on, an AppendEntries every 100 ms,
        so one blocking caller commits about 10 writes/s) and the settings that commit
        more at some concurrency. Both the defaults and the best setting found at each
        concurrency are reported, with which one it was.

Then failover: 10 times, in a ``wb.Cluster(mode="raft", nodes=3)`` in this process (the
workbench has no command that kills one node of a ``workbench cluster`` process), kill
the leader and time until a SET is acknowledged by the new one; the killed node is
restarted and the shard settles before the next try.

Next to the rates: the CPU each setup spent per write (schedstat, as ``sync_mode.py``),
the disk's ``os.write`` + ``os.fsync`` of a 100-byte append in the directory the nodes use
(``write_behind.py``'s probe), and how many writes each Raft log entry carried. The
"explain" paragraph is assembled from these measured figures only.

    .venv/bin/python benchmarks/raft_mode.py --runs 3 --write       # about 7 minutes
    .venv/bin/python benchmarks/raft_mode.py --only pysyncobj --runs 1
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import redis
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))                 # the workbench package itself
from results import replace_section  # noqa: E402
from run import (bench_parser, check_deadline, command_line, cpu_seconds, free_port,  # noqa: E402
                 have_redis_tools, info, percentile, rotated, round_trips, stop_process,
                 wait_for_ready)
from sync_mode import machine_busy  # noqa: E402
from write_behind import fsync_latency  # noqa: E402

try:
    import pysyncobj_kv
except ImportError:              # pysyncobj is missing: main() says how to install it
    pysyncobj_kv = None

SCRIPT = os.path.basename(__file__)
PARTS = ("workbench", "pysyncobj", "failover")
CLIENTS = (1, 10, 50)
BENCH_REQUESTS = {1: 3_000, 10: 10_000, 50: 30_000}   # redis-benchmark -n, per concurrency
PYSYNCOBJ_SECONDS = 3.0          # each pysyncobj measurement runs this long
LATENCY_OPS = 1_000              # one redis-py client's sequential SETs
FSYNC_PROBES = 300               # the disk's write + fsync, timed before each (w) run
ONE_CLIENT_P50_MS, RATIO_AT_50 = 2.0, 3.0            # the issue's targets
# pysyncobj settings tried (SyncObjConf keywords). With batching on, the leader sends
# AppendEntries every appendEntriesPeriod and its tick thread wakes at least every
# autoTickPeriod; with batching off, every write is sent at once.
PYSYNCOBJ_SETTINGS = {
    "defaults": {},
    "batching off": {"appendEntriesUseBatch": False},
    "1 ms period": {"appendEntriesPeriod": 0.001, "autoTickPeriod": 0.001},
    "0.5 ms period": {"appendEntriesPeriod": 0.0005, "autoTickPeriod": 0.0005},
    "0.1 ms period": {"appendEntriesPeriod": 0.0001, "autoTickPeriod": 0.0001},
}
DRIVERS = ("blocking threads", "callbacks")
SETTLE_TIMEOUT, FAILOVER_TIMEOUT, POLL_S = 30.0, 30.0, 0.002


# -- the workbench side -------------------------------------------------------------------
class RaftShard:
    """``workbench cluster --mode raft --nodes 3`` in its own process, stopped by its PID."""

    def __init__(self, workdir: str):
        ready = os.path.join(workdir, "ready")
        self.data_dir = os.path.join(workdir, "wb")
        self.log_path = os.path.join(workdir, "cluster.log")
        cmd = [sys.executable, "-m", "workbench", "cluster", "--mode", "raft", "--nodes", "3",
               "--data-dir", self.data_dir, "--ready-file", ready, "--duration", "900"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=os.path.dirname(HERE))
        ports = wait_for_ready(self.proc, ready, 45)
        if ports is None:
            self.stop()
            raise RuntimeError("workbench cluster --mode raft did not start:\n" + self.log_tail())
        self.ports = ports
        try:
            self.port = self.find_leader(SETTLE_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def find_leader(self, timeout: float) -> int:
        """The client port of the node whose ``INFO raft`` says ``raft_role:leader`` and
        that serves (its first entry of its term committed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leaders = []
            for port in self.ports:
                try:
                    fields = info(port, "raft")
                except redis.RedisError:
                    continue
                if fields.get("raft_role") == "leader" and int(fields.get("raft_serving", 1)):
                    leaders.append(port)
            if len(leaders) == 1:
                return leaders[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"no raft leader after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "".join(open(self.log_path).readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)


def bench_set(port: int, clients: int, requests: int) -> dict:
    """``redis-benchmark -t set -c clients``: requests/s, its p50/p99 per request (its CSV
    has them; ``run.redis_benchmark`` keeps only the rate), its own CPU, and the error
    replies it showed (``-e`` prints at most one a second, so a count of 0 means none)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([shutil.which("redis-benchmark"), "-p", str(port), "-t", "set",
                          "-n", str(requests), "-c", str(clients), "-e", "--csv"],
                         capture_output=True, text=True, timeout=300, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = None
    for line in out.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells[0] == "SET":
            row = cells
    if row is None:
        raise RuntimeError(f"redis-benchmark printed no SET row:\n{out.stdout}{out.stderr}")
    errors = sum("Error from server" in line for line in (out.stdout + out.stderr).splitlines())
    return {"ops": float(row[1]), "p50": float(row[4]) / 1e3, "p99": float(row[6]) / 1e3,
            "client_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "wall": wall, "errors": errors, "n": requests}


def measure_workbench(workdir: str, scale: float, progress: tqdm) -> dict:
    """The disk's fsync, then one fresh shard: redis-benchmark at each concurrency, then
    one redis-py client."""
    fsyncs = fsync_latency(workdir, FSYNC_PROBES)
    shard = RaftShard(workdir)
    try:
        out = {"leader_port": shard.port, "fsync": fsyncs}
        bench_set(shard.port, 10, max(500, int(2_000 * scale)))          # warm up
        for clients in CLIENTS:
            n = max(300, int(BENCH_REQUESTS[clients] * scale))
            commit0 = int(info(shard.port, "raft")["raft_commit_index"])
            cpu0, busy0 = cpu_seconds(shard.proc.pid), machine_busy()
            r = bench_set(shard.port, clients, n)
            r["server_cpu"] = cpu_seconds(shard.proc.pid) - cpu0
            # the machine's busy time beyond the shard and redis-benchmark: other load
            r["other"] = (machine_busy() - busy0 - r["server_cpu"] - r["client_cpu"]) / r["wall"]
            r["entries"] = int(info(shard.port, "raft")["raft_commit_index"]) - commit0
            out[clients] = r
            progress.update(1)
        out["trips"] = round_trips(shard.port, max(200, int(LATENCY_OPS * scale)))
        progress.update(1)
        out["raft"] = info(shard.port, "raft")
        if shard.proc.poll() is not None:
            raise RuntimeError("the raft cluster exited early:\n" + shard.log_tail())
        return out
    finally:
        shard.stop()


# -- the pysyncobj side -------------------------------------------------------------------
class LogCounter(logging.Handler):
    """Counts pysyncobj's log records by level, instead of printing them over tqdm."""

    def __init__(self):
        super().__init__()
        self.counts: dict = {}
        self.first: dict = {}

    def emit(self, record) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1
        self.first.setdefault(record.levelname, record.getMessage())


def measure_pysyncobj(scale: float, log: LogCounter, progress: tqdm) -> dict:
    """Every setting x driver x concurrency, a fresh 3-node store per setting."""
    seconds = max(1.0, PYSYNCOBJ_SECONDS * scale)
    drivers = {"blocking threads": pysyncobj_kv.blocking_callers,
               "callbacks": pysyncobj_kv.callback_window}
    out = {}
    for setting, conf in PYSYNCOBJ_SETTINGS.items():
        trio = pysyncobj_kv.Trio([free_port() for _ in range(3)], conf)
        try:
            for driver in DRIVERS:
                for clients in CLIENTS:
                    progress.set_postfix_str(f"pysyncobj {setting}, {driver}, {clients}")
                    logged = sum(log.counts.values())
                    cpu0, busy0 = cpu_seconds(os.getpid()), machine_busy()
                    r = drivers[driver](trio.leader, clients, seconds)
                    cpu = cpu_seconds(os.getpid()) - cpu0
                    other = (machine_busy() - busy0 - cpu) / r["elapsed"]
                    lat = r["latencies"]
                    out[(setting, driver, clients)] = {
                        "ops": r["writes"] / r["elapsed"], "n": r["writes"],
                        "p50": percentile(lat, 0.5) if lat else float("nan"),
                        "p99": percentile(lat, 0.99) if lat else float("nan"),
                        "cpu": cpu, "wall": r["elapsed"], "failures": r["failures"],
                        "other": other,
                        "logged": sum(log.counts.values()) - logged}
                    progress.update(1)
        finally:
            trio.close()
    return out


# -- failover -----------------------------------------------------------------------------
def settled(cluster) -> bool:
    """Every node up, one serving leader, every node has applied what it committed."""
    state = cluster.raft_state()
    if not all(s["alive"] for s in state.values()):
        return False
    leaders = [s for s in state.values() if s["role"] == "leader" and s["serving"]]
    return len(leaders) == 1 and all(s["applied_index"] >= leaders[0]["commit_index"]
                                     for s in state.values())


def wait_settled(cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not settled(cluster):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the raft shard did not settle in {timeout} s: "
                               f"{cluster.raft_state()}")
        time.sleep(0.02)


def first_write(cluster, killed, t0: float, value: int) -> tuple[float, float, int, str]:
    """Seconds from ``t0`` until a SET is acknowledged by a leader other than ``killed``,
    seconds until a node first said it was leader (``raft_state``), how many attempts
    failed first, and the new leader's name. The leader is looked up again before every
    attempt (``current_primary`` does not wait: the loop polls every ``POLL_S``)."""
    failed, elected = 0, None
    deadline = t0 + FAILOVER_TIMEOUT
    while time.monotonic() < deadline:
        if elected is None and any(s.get("role") == "leader" for name, s in
                                   cluster.raft_state().items() if name != killed.name):
            elected = time.monotonic() - t0
        leader = cluster.current_primary()
        if leader is not None and leader is not killed:
            client = cluster.client(leader, socket_timeout=2, socket_connect_timeout=1)
            try:
                if client.set("failover", value):
                    took = time.monotonic() - t0
                    return took, took if elected is None else elected, failed, leader.name
            except redis.RedisError:   # CLUSTERDOWN until its NOOP commits, a closed socket..
                pass
            finally:
                client.close()
        failed += 1
        time.sleep(POLL_S)
    raise TimeoutError(f"no write acknowledged {FAILOVER_TIMEOUT} s after killing {killed.name}")


def measure_failover(tries: int, workdir: str) -> dict:
    import workbench as wb
    times, elected, attempts, moves = [], [], [], []
    cluster = wb.Cluster(mode="raft", nodes=3, data_dir=os.path.join(workdir, "failover"))
    try:
        timeout_ms = int(cluster.client().config_get("election-timeout-ms")["election-timeout-ms"])
        wait_settled(cluster, SETTLE_TIMEOUT)
        for i in tqdm(range(tries), desc="failover", unit="try"):
            leader = cluster.primary(timeout=SETTLE_TIMEOUT)
            term = cluster.raft_state()[leader.name]["term"]
            t0 = time.monotonic()
            leader.kill()
            took, won, failed, new = first_write(cluster, leader, t0, i)
            times.append(took)
            elected.append(won)
            attempts.append(failed)
            # more than one term later: an election round ended without a winner (split vote)
            moves.append(f"{leader.name}->{new} (+{cluster.raft_state()[new]['term'] - term} "
                         f"term)")
            leader.restart()
            wait_settled(cluster, SETTLE_TIMEOUT)
    finally:
        cluster.close()
    return {"times": times, "elected": elected, "attempts": attempts, "moves": moves,
            "election_timeout_ms": timeout_ms}


# -- one run ------------------------------------------------------------------------------
def measure(parts: list[str], runs: int, scale: float, tries: int, deadline: float) -> dict:
    log = LogCounter()
    pso_logger = logging.getLogger("pysyncobj")
    pso_logger.addHandler(log)
    pso_logger.propagate = False
    m: dict = {"parts": parts, "workbench": [], "pysyncobj": [], "log": log}
    setups = [p for p in ("workbench", "pysyncobj") if p in parts]
    steps = runs * (("workbench" in parts) * (len(CLIENTS) + 1)
                    + ("pysyncobj" in parts) * len(PYSYNCOBJ_SETTINGS) * len(DRIVERS) * len(CLIENTS))
    with tempfile.TemporaryDirectory(prefix="wb-raft-mode-") as workdir:
        m["filesystem"] = filesystem(workdir)
        if setups:
            with tqdm(total=steps, desc="raft mode", unit="step") as progress:
                for run in range(runs):
                    for setup in rotated(setups, run):
                        check_deadline(deadline)
                        progress.set_postfix_str(f"run {run + 1}: {setup}")
                        if setup == "workbench":
                            m["workbench"].append(measure_workbench(
                                tempfile.mkdtemp(dir=workdir), scale, progress))
                        else:
                            m["pysyncobj"].append(measure_pysyncobj(scale, log, progress))
        if "failover" in parts:
            check_deadline(deadline)
            m["failover"] = measure_failover(tries, workdir)
    return m


def filesystem(path: str) -> str:
    """The type of the filesystem ``path`` is on (from /proc/mounts): tmpfs would make
    every fsync free."""
    best, kind = "", "?"
    path = os.path.realpath(path)
    try:
        for line in open("/proc/mounts"):
            _, mount, fstype = line.split()[:3]
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


# -- summary ------------------------------------------------------------------------------
def med(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def summarize(m: dict) -> dict:
    s: dict = {"parts": m["parts"], "filesystem": m["filesystem"]}
    others = [r[c]["other"] for r in m["workbench"] for c in CLIENTS]
    others += [r["other"] for run in m["pysyncobj"] for r in run.values()]
    if others:
        s["others"] = (max(0.0, med(others)), max(0.0, max(others)))
    if m["workbench"]:
        w = {}
        for c in CLIENTS:
            rs = [r[c] for r in m["workbench"]]
            w[c] = {"ops": med(r["ops"] for r in rs), "p50": med(r["p50"] for r in rs),
                    "p99": med(r["p99"] for r in rs),
                    "server_us": med(r["server_cpu"] / r["n"] * 1e6 for r in rs),
                    "server_busy": med(r["server_cpu"] / r["wall"] for r in rs),
                    "client_busy": med(r["client_cpu"] / r["wall"] for r in rs),
                    "writes_per_entry": med(r["n"] / max(1, r["entries"]) for r in rs),
                    "errors": sum(r["errors"] for r in rs), "runs": [r["ops"] for r in rs]}
        trips = [(percentile(r["trips"], 0.5), percentile(r["trips"], 0.99), len(r["trips"]))
                 for r in m["workbench"]]
        fsyncs = [x for r in m["workbench"] for x in r["fsync"]]
        s["fsync"] = (percentile(fsyncs, 0.5), percentile(fsyncs, 0.99), len(fsyncs))
        s["workbench"] = w
        s["trips"] = (med(t[0] for t in trips), med(t[1] for t in trips), sum(t[2] for t in trips))
    if m["pysyncobj"]:
        grid = {}
        for key in m["pysyncobj"][0]:
            rs = [r[key] for r in m["pysyncobj"]]
            grid[key] = {"ops": med(r["ops"] for r in rs), "p50": med(r["p50"] for r in rs),
                         "p99": med(r["p99"] for r in rs), "n": sum(r["n"] for r in rs),
                         "cpu_us": med(r["cpu"] / max(1, r["n"]) * 1e6 for r in rs),
                         "busy": med(r["cpu"] / r["wall"] for r in rs),
                         "failures": sum(r["failures"] for r in rs),
                         "logged": sum(r["logged"] for r in rs)}
        s["grid"] = grid
        # at each concurrency: the defaults (the better driver) and the best of everything
        s["defaults"], s["best"] = {}, {}
        for c in CLIENTS:
            s["defaults"][c] = max((("defaults", d, c) for d in DRIVERS), key=lambda k: grid[k]["ops"])
            s["best"][c] = max((k for k in grid if k[2] == c), key=lambda k: grid[k]["ops"])
        s["log_counts"] = dict(m["log"].counts)
        s["log_first"] = dict(m["log"].first)
    if "failover" in m:
        f = m["failover"]
        s["failover"] = {**f, "p50": percentile(f["times"], 0.5), "max": max(f["times"]),
                         "min": min(f["times"]), "elected_p50": percentile(f["elected"], 0.5),
                         "serve_p50": percentile([t - e for t, e in zip(f["times"], f["elected"])],
                                                 0.5)}
    return s


# -- the report ---------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def reproduce(parts: list[str], runs: int, scale: float) -> str:
    """The command that reproduces this run (``--write`` needs every part)."""
    if set(parts) == set(PARTS):
        return command_line(SCRIPT, runs, scale)
    return (f".venv/bin/python benchmarks/{SCRIPT} --only {','.join(parts)} --runs {runs}"
            + (f" --scale {scale:g}" if scale != 1 else ""))


def report(s: dict, runs: int, scale: float) -> str:
    head = (f"Medians of {runs} runs, measured {time.strftime('%Y-%m-%d')} on "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"`{reproduce(s['parts'], runs, scale)}`.")
    if "workbench" in s:
        head += (" (w) `workbench cluster --mode raft --nodes 3`: one process, its three "
                 "nodes on one event loop, the mode's defaults (each node fsyncs its Raft log; "
                 f"data on {s['filesystem']}), driven by `redis-benchmark -t set` at the "
                 "leader, a fresh shard per run; every `+OK` is a committed write; p50/p99 "
                 "per write are redis-benchmark's.")
    if "grid" in s:
        head += (f" (p) pysyncobj {pysyncobj_version()}: a 3-node key-value store in the "
                 "benchmark's own process (one GIL), **no fsync** (pysyncobj has none), N "
                 f"writes in flight for {max(1.0, PYSYNCOBJ_SECONDS * scale):g} s per "
                 "measurement; \"defaults\" is its default configuration, \"best\" the "
                 "setting and driver that committed the most at that concurrency; p50/p99 "
                 "per write from the call to the commit callback.")
    parts = [head]
    w, g = s.get("workbench"), s.get("grid")
    cols = ["clients"]
    if w:
        cols += ["(w) raft writes/s", "(w) p50 / p99"]
    if g:
        cols += ["(p) defaults writes/s", "(p) defaults p50 / p99", "(p) best writes/s",
                 "(p) best: setting, driver", "(p) best p50 / p99"]
    if w and g:
        cols += ["(w) / defaults", "(w) / best"]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if "setting" in c else "---:" for c in cols) + "|"]
    for c in CLIENTS:
        cells = [str(c)]
        if w:
            cells += [f"{w[c]['ops']:,.0f}", f"{ms(w[c]['p50'])} / {ms(w[c]['p99'])}"]
        if g:
            d, b = g[s["defaults"][c]], g[s["best"][c]]
            cells += [f"{d['ops']:,.0f}", f"{ms(d['p50'])} / {ms(d['p99'])}", f"{b['ops']:,.0f}",
                      f"{s['best'][c][0]}, {s['best'][c][1]}", f"{ms(b['p50'])} / {ms(b['p99'])}"]
        if w and g:
            cells += [f"{w[c]['ops'] / d['ops']:.2f}x", f"{w[c]['ops'] / b['ops']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    if w or g:
        parts.append("\n".join(lines))
    if "workbench" in s:
        w, t = s["workbench"], s["trips"]
        lines = ["| (w) at the leader | 1 client | 10 clients | 50 clients |",
                 "|---|---:|---:|---:|",
                 "| cluster process CPU per write | " + " | ".join(
                     f"{w[c]['server_us']:.0f} µs" for c in CLIENTS) + " |",
                 "| cluster process cores busy | " + " | ".join(
                     f"{w[c]['server_busy']:.2f}" for c in CLIENTS) + " |",
                 "| redis-benchmark cores busy | " + " | ".join(
                     f"{w[c]['client_busy']:.2f}" for c in CLIENTS) + " |",
                 "| writes per committed log entry | " + " | ".join(
                     f"{w[c]['writes_per_entry']:.1f}" for c in CLIENTS) + " |",
                 "| error replies seen | " + " | ".join(
                     f"{w[c]['errors']}" for c in CLIENTS) + " |"]
        parts.append("\n".join(lines))
        parts.append(f"One redis-py client, sequential SETs at the leader ({t[2]:,} ops): "
                     f"p50 {ms(t[0])}, p99 {ms(t[1])}. The disk: `os.write` + `os.fsync` of a "
                     f"100-byte append in the nodes' directory, p50 {s['fsync'][0] * 1e6:.0f} "
                     f"µs, p99 {s['fsync'][1] * 1e6:.0f} µs ({s['fsync'][2]:,} probes, "
                     "taken before each run's shard started).")
    if "grid" in s:
        g = s["grid"]
        lines = ["| (p) pysyncobj setting | driver | 1 | 10 | 50 | p50 at 1 / 50 "
                 "| process CPU per write at 50 | process cores busy at 50 |",
                 "|---|---|---:|---:|---:|---:|---:|---:|"]
        for setting, conf in PYSYNCOBJ_SETTINGS.items():
            for driver in DRIVERS:
                k50 = (setting, driver, 50)
                lines.append(
                    f"| {setting} `{conf_text(conf)}` | {driver} | "
                    + " | ".join(f"{g[(setting, driver, c)]['ops']:,.0f}" for c in CLIENTS)
                    + f" | {ms(g[(setting, driver, 1)]['p50'])} / {ms(g[k50]['p50'])} "
                    f"| {g[k50]['cpu_us']:.0f} µs | {g[k50]['busy']:.2f} |")
        parts.append("\n".join(lines))
        few = g[("defaults", "blocking threads", 1)]["n"]
        parts.append("pysyncobj committed writes/s per writes in flight. \"blocking threads\": "
                     "N threads each calling `set(key, value, sync=True)`; \"callbacks\": N "
                     "chains of `set(..., callback=...)`, each callback starting the next "
                     "write (no thread switch per write). Process CPU includes the driver: "
                     "nodes and client share the process. At its defaults one blocking caller "
                     f"committed {few} writes in all runs together, so that p99 is close to "
                     "a maximum.")
    if "failover" in s:
        f = s["failover"]
        parts.append(
            f"**Failover** (in-process `wb.Cluster(mode=\"raft\", nodes=3)`, election timeout "
            f"{f['election_timeout_ms']} ms): from killing the leader to the first SET "
            f"acknowledged by the new one, p50 {ms(f['p50'])}, max {ms(f['max'])} (min "
            f"{ms(f['min'])}) over {len(f['times'])} tries; the killed node was restarted and "
            "the shard settled before each next try.")
    return "\n\n".join(parts) + "\n"


def conf_text(conf: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in conf.items()) or "SyncObjConf()"


def pysyncobj_version() -> str:
    try:
        from importlib.metadata import version
        return version("pysyncobj")
    except Exception:
        return "?"


def interpretation(s: dict, runs: int, scale: float) -> str:
    """The "explain" paragraph: each sentence a measured figure, or arithmetic on them."""
    parts = []
    have_w, have_p = "workbench" in s, "grid" in s
    if have_w:
        w, t = s["workbench"], s["trips"]
        parts.append(
            f"**Targets.** One client p50 <= {ONE_CLIENT_P50_MS:g} ms: "
            f"{verdict(w[1]['p50'] <= ONE_CLIENT_P50_MS / 1e3)} by redis-benchmark `-c 1` "
            f"({ms(w[1]['p50'])}, p99 {ms(w[1]['p99'])}); one redis-py client: p50 "
            f"{ms(t[0])}, p99 {ms(t[1])}.")
    if have_w and have_p:
        g = s["grid"]
        d50, b50 = g[s["defaults"][50]], g[s["best"][50]]
        r_d, r_b = w[50]["ops"] / d50["ops"], w[50]["ops"] / b50["ops"]
        per_run = ", ".join(f"{x:,.0f}" for x in w[50]["runs"])
        parts.append(
            f"At 50 clients >= {RATIO_AT_50:g}x pysyncobj's committed writes/s: "
            f"{r_d:.2f}x its defaults ({verdict(r_d >= RATIO_AT_50)}), {r_b:.2f}x its best "
            f"setting found, {s['best'][50][0]} with {s['best'][50][1]} "
            f"({verdict(r_b >= RATIO_AT_50)}); (w) per run: {per_run} writes/s.")
    if have_w:
        fs50, fs99 = s["fsync"][:2]
        share = (f"two fsyncs at the probe's p50 are {2 * fs50 * 1e3:.2f} ms of the "
                 f"{ms(t[0])} one redis-py client waits" if 2 * fs50 < t[0] else
                 f"two fsyncs at the probe's p50 ({2 * fs50 * 1e3:.2f} ms) are more than the "
                 f"{ms(t[0])} one redis-py client waits: the probe and the writes did not "
                 "see the same disk, which this machine shares")
        parts.append(
            f"**One write of (w).** The shell persists a Ready before it sends its messages "
            f"(workbench/consensus/shell.py), so a write is acknowledged after at least the "
            f"leader's fsync and then a follower's, one after the other, plus two message "
            f"hops. This disk's write + fsync of 100 bytes: p50 {fs50 * 1e6:.0f} µs, p99 "
            f"{fs99 * 1e6:.0f} µs; {share}. The cluster process spent "
            f"{w[1]['server_us']:.0f} µs of CPU per write at one client "
            f"({w[1]['server_busy']:.2f} of a core).")
        parts.append(
            f"**(w) under load.** At 50 clients each committed log entry carried "
            f"{w[50]['writes_per_entry']:.1f} writes ({w[10]['writes_per_entry']:.1f} at 10, "
            f"{w[1]['writes_per_entry']:.1f} at 1): the leader makes one event-loop turn's "
            f"writes one entry, so one fsync covers them all. The cluster process spent "
            f"{w[50]['server_us']:.0f} µs of CPU per write and was busy "
            f"{w[50]['server_busy']:.2f} of a core (its three nodes share one loop and one "
            f"GIL); redis-benchmark used {w[50]['client_busy']:.2f} of a core. Error replies "
            f"seen: {sum(w[c]['errors'] for c in CLIENTS)}.")
    if have_p:
        g = s["grid"]
        period = 0.1        # pysyncobj's default appendEntriesPeriod
        little = ", ".join(
            f"{c}: {c / g[s['defaults'][c]]['p50']:,.0f} predicted, "
            f"{g[s['defaults'][c]]['ops']:,.0f} measured" for c in CLIENTS)
        b50 = g[s["best"][50]]
        parts.append(
            f"**pysyncobj.** With its defaults a write waits for the next AppendEntries, sent "
            f"every {period * 1e3:.0f} ms with batching on: p50 "
            + ", ".join(f"{ms(g[s['defaults'][c]]['p50'])}" for c in CLIENTS)
            + f" at 1/10/50 writes in flight, so its rate is the writes in flight divided by "
            f"that wait (Little's law; {little}). Shorter periods or batching off remove the "
            f"wait; its best at 50 ({s['best'][50][0]}, {s['best'][50][1]}) spent "
            f"{b50['cpu_us']:.0f} µs of process CPU per write, nodes and driver together, "
            f"{b50['busy']:.2f} of a core busy. None of its writes waits for a disk.")
        crit = s["log_counts"].get("CRITICAL", 0)
        if s["log_counts"]:
            by_setting: dict = {}
            for k, v in g.items():
                by_setting[k[0]] = by_setting.get(k[0], 0) + v["logged"]
            where = [f"{name} {n}" for name, n in by_setting.items() if n]
            parts.append(
                f"pysyncobj logged {', '.join(f'{n} {lvl}' for lvl, n in s['log_counts'].items())} "
                f"records during the measurements (by setting: {', '.join(where)})"
                + (f"; the first CRITICAL: \"{s['log_first']['CRITICAL']}\". (On an "
                   "AppendEntries whose previous index is below the end of its log, a "
                   "pysyncobj follower deletes every entry after that index, even entries "
                   "it has acknowledged and applied, then appends the message's.)"
                   if crit else "."))
        failures = sum(v["failures"] for v in g.values())
        if failures:
            parts.append(f"pysyncobj failed {failures} writes (callback error or timeout).")
    if "failover" in s:
        f = s["failover"]
        parts.append(
            f"**Failover.** A follower waits a random time in [{f['election_timeout_ms']}, "
            f"{2 * f['election_timeout_ms']}) ms without hearing the leader before it stands; "
            f"of the {ms(f['p50'])} p50 (max {ms(f['max'])}) from the kill to the first "
            f"acknowledged write, a node said it was leader after a p50 of "
            f"{ms(f['elected_p50'])} (the wait, a pre-vote and a vote round); from then to the "
            f"acknowledged write (the new leader's first entry committed, as it serves "
            f"nothing before, then the write itself) took a p50 of {ms(f['serve_p50'])}. "
            f"Tries, kill to elected / to first write: "
            + ", ".join(f"{m} {ms(e)} / {ms(x)}"
                        for m, e, x in zip(f["moves"], f["elected"], f["times"]))
            + f" (+N term: how many terms the shard moved on; more than one means an election "
            f"round without a winner, a split vote); the client polled every {POLL_S * 1e3:g} ms.")
    if "others" in s:
        parts.append(f"Other processes kept a median {s['others'][0]:.2f} cores busy (at most "
                     f"{s['others'][1]:.2f}) during the measurements (/proc/stat minus the "
                     "setup and its client).")
    parts.append("Absolute rates move 15-30% between runs on this shared 2-core machine; read "
                 "the ratios, and ratios closer than ~15% as equal.")
    return " ".join(parts) + f" Reproduce with `{reproduce(s['parts'], runs, scale)}`.\n"


def main(argv=None) -> int:
    parser = bench_parser(__doc__, counts="request counts and measurement times")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run, of {', '.join(PARTS)}")
    parser.add_argument("--failover-tries", type=int, default=10)
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"--only: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    if args.write and set(parts) != set(PARTS):
        parser.error("--write updates RESULTS.md with the whole comparison: run every part")
    if "pysyncobj" in parts and pysyncobj_kv is None:
        print("pysyncobj is not installed in this environment; install it with\n"
              '    .venv/bin/pip install -e ".[bench]"', file=sys.stderr)
        return 2
    if "workbench" in parts and not have_redis_tools():
        return 2
    try:
        m = measure(parts, args.runs, args.scale, args.failover_tries,
                    time.monotonic() + args.time_limit)
    except (TimeoutError, subprocess.TimeoutExpired, subprocess.CalledProcessError,
            RuntimeError, ConnectionError, ValueError) as err:
        print(f"{SCRIPT}: {err}", file=sys.stderr)
        return 1
    s = summarize(m)
    block = report(s, args.runs, args.scale) + "\n" + interpretation(s, args.runs, args.scale)
    print(block)
    raw = {f"workbench@{c}": [round(r[c]["ops"]) for r in m["workbench"]]
           for c in CLIENTS if m["workbench"]}
    raw.update({f"{k[0]}/{k[1]}@{k[2]}": [round(r[k]["ops"]) for r in m["pysyncobj"]]
                for k in (m["pysyncobj"][0] if m["pysyncobj"] else {})})
    if raw:
        print("raw writes/s per run:", raw)
    if args.write:
        replace_section("raft-mode", "## Raft mode (3 nodes, fsync every node) vs pysyncobj\n\n"
                        + block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
