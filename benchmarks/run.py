"""Throughput of a workbench node next to a real redis-server, in the same run.

Each setup starts a fresh server in its own process on a free loopback port (a
workbench node via ``workbench cluster --nodes 1``, Debian's ``redis-server``), runs
``redis-benchmark`` at 1 client, 50 clients and 50 clients with 16-deep pipelines,
repeats every measurement ``--runs`` times, and reports medians and the ratio
workbench / redis-server. Results go to ``benchmarks/RESULTS.md`` (``--write``).

    python benchmarks/run.py --runs 3 --write

The other benchmarks reuse its harness: ``Server``, ``redis_benchmark``, the process and
CPU helpers, ``round_trips`` and the common command line (``bench_parser``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis
from tqdm import tqdm

from results import replace_section  # benchmarks/ is on the path: run as a script

HERE = os.path.dirname(os.path.abspath(__file__))
LOADS = [("-c 1", ["-c", "1"], 20_000), ("-c 50", ["-c", "50"], 100_000),
         ("-c 50 -P 16", ["-c", "50", "-P", "16"], 400_000)]
PERSISTENCE = {"none": ({"appendonly": "no"}, ["--appendonly", "no"]),
               "AOF everysec": ({"appendonly": "yes", "appendfsync": "everysec"},
                                ["--appendonly", "yes", "--appendfsync", "everysec"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_ready(proc: subprocess.Popen, ready: str, timeout: float) -> list[int] | None:
    """The ports ``workbench cluster --ready-file ready`` wrote once it was up; None if
    ``proc`` exited or ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return [int(p) for p in open(ready).read().split()]


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"no server on port {port} after {timeout} s")


class Server:
    """One server process, started here and stopped by its PID."""

    def __init__(self, kind: str, persistence, workdir: str):
        """``persistence``: a name in PERSISTENCE, or a (workbench config, redis-server
        arguments) pair."""
        self.kind = kind
        config, redis_args = (PERSISTENCE[persistence] if isinstance(persistence, str)
                              else persistence)
        if kind == "workbench":
            ready = os.path.join(workdir, "ready")
            cmd = [sys.executable, "-m", "workbench", "cluster", "--nodes", "1",
                   "--data-dir", os.path.join(workdir, "wb"), "--ready-file", ready,
                   "--duration", "900"]
            for name, value in config.items():
                cmd += ["--config", f"{name}={value}"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ports = wait_for_ready(self.proc, ready, 30)
            if ports is None:
                self.stop()
                raise RuntimeError("the workbench node did not start")
            self.port = ports[0]
        else:
            self.port = free_port()
            data = os.path.join(workdir, "redis")
            os.makedirs(data, exist_ok=True)
            self.proc = subprocess.Popen(
                [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--dir", data, *redis_args],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for_port(self.port)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        stop_process(self.proc, 10)


def redis_benchmark(port: int, tests: str, load: list[str], requests: int) -> dict[str, float]:
    out = subprocess.run([shutil.which("redis-benchmark"), "-p", str(port), "-t", tests,
                          "-n", str(requests), "--csv", *load],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    rps = {}
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[0] != "test":
            rps[cells[0]] = float(cells[1])
    return rps


def info(port: int, *sections: str) -> dict:
    """The fields of ``INFO section`` for each of ``sections``, over one connection."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, socket_connect_timeout=5)
    try:
        return {k: v for section in sections for k, v in client.info(section).items()}
    finally:
        client.close()


def round_trips(port: int, count: int, wait_for: int = 0, value: str = "xxx") -> list[float]:
    """Seconds per op of one redis-py client, sequential, on a real socket: SET, or with
    ``wait_for`` replicas SET + ``WAIT wait_for 0`` as a two-command pipeline (one round
    trip; a WAIT answered with fewer replicas raises)."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, socket_connect_timeout=5)
    pipe = client.pipeline(transaction=False)

    def op(key):
        if wait_for:
            pipe.set(key, value)
            pipe.execute_command("WAIT", wait_for, 0)
            _, acked = pipe.execute()
            if acked < wait_for:
                raise RuntimeError(f"WAIT {wait_for} 0 answered {acked}")
        else:
            client.set(key, value)
    try:
        for i in range(100):                                 # warm up the connection
            op(f"warm:{i}")
        out = []
        for i in range(count):
            t0 = time.perf_counter()
            op(f"lat:{i}")
            out.append(time.perf_counter() - t0)
        return out
    finally:
        client.close()


def cpu_seconds(pid: int) -> float:
    """Time on a CPU of a process, its threads and its child processes (the write-behind
    writer): the scheduler's own count from /proc/.../schedstat, in nanoseconds, not the
    tick-sampled user/system times."""
    total = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0]) / 1e9
            for child in open(f"/proc/{pid}/task/{tid}/children").read().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rotated(items, run: int) -> list:
    """``items`` started at a different one each run, so that no setup always goes first."""
    items = list(items)
    shift = run % len(items)
    return items[shift:] + items[:shift]


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError("the benchmark ran past --time-limit")


def measure(runs: int, scale: float, persistence_modes: list[str]) -> list[dict]:
    rows = []
    steps = runs * len(LOADS) * 2 * len(persistence_modes)
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as workdir, \
            tqdm(total=steps, desc="benchmark", unit="run") as progress:
        for persistence in persistence_modes:
            samples: dict = {}
            for run in range(runs):
                for kind in ("redis-server", "workbench"):   # side by side, alternating
                    server = Server(kind, persistence, tempfile.mkdtemp(dir=workdir))
                    try:
                        for label, load, requests in LOADS:
                            n = max(1000, int(requests * scale))
                            for test, value in redis_benchmark(server.port, "set,get", load, n).items():
                                samples.setdefault((label, test, kind), []).append(value)
                            progress.update(1)
                    finally:
                        server.stop()
            for label, _, _ in LOADS:
                for test in ("SET", "GET"):
                    ref = statistics.median(samples[(label, test, "redis-server")])
                    wbv = statistics.median(samples[(label, test, "workbench")])
                    rows.append({"persistence": persistence, "load": label, "test": test,
                                 "redis": ref, "workbench": wbv, "ratio": wbv / ref})
    return rows


def report(rows: list[dict], runs: int) -> str:
    lines = ["| persistence | load | command | redis-server ops/s | workbench ops/s | ratio |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['persistence']} | `{r['load']}` | {r['test']} | {r['redis']:,.0f} | "
                     f"{r['workbench']:,.0f} | {r['ratio']:.2f}x |")
    head = (f"Medians of {runs} runs, measured {time.strftime('%Y-%m-%d')} on "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"`python benchmarks/run.py --runs {runs} --write`.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def have_redis_tools() -> bool:
    """The reference server and the load generator; say how to get them if missing."""
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is required (apt-get install redis-server redis-tools)", file=sys.stderr)
            return False
    return True


def bench_parser(doc: str, *, counts: str = "request counts") -> argparse.ArgumentParser:
    """The command line of a benchmark that rotates its setups run by run: ``--runs``,
    ``--scale`` (the fraction of its ``counts``), ``--time-limit`` and ``--write``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help=f"fraction of the {counts}")
    parser.add_argument("--time-limit", type=float, default=1800,
                        help="give up (stopping every server) after this many seconds")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    return parser


def command_line(script: str, runs: int, scale: float, python: str = ".venv/bin/python") -> str:
    """The command that reproduces a run, as RESULTS.md quotes it."""
    return f"{python} benchmarks/{script} --runs {runs}" + (
        f" --scale {scale:g}" if scale != 1 else "") + " --write"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the request counts")
    parser.add_argument("--persistence", default="none,AOF everysec")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if not have_redis_tools():
        return 2
    rows = measure(args.runs, args.scale, args.persistence.split(","))
    table = report(rows, args.runs)
    print(table)
    if args.write:
        replace_section("throughput", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
