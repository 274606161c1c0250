"""Throughput of a workbench node next to a real redis-server, in the same run.

Each setup starts a fresh server in its own process on a free loopback port (a
workbench node via ``workbench cluster --nodes 1``, Debian's ``redis-server``), runs
``redis-benchmark`` at 1 client, 50 clients and 50 clients with 16-deep pipelines,
repeats every measurement ``--runs`` times, and reports medians and the ratio
workbench / redis-server. Results go to ``benchmarks/RESULTS.md`` (``--write``).

    python benchmarks/run.py --runs 3 --write
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
            deadline = time.monotonic() + 30
            while not os.path.exists(ready):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the workbench node did not start")
                time.sleep(0.05)
            self.port = int(open(ready).read().split()[0])
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
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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
