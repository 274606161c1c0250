"""redis-benchmark's default test list, a workbench node next to redis-server.

Both servers run in memory (``appendonly no``), each in its own process, started here and
stopped by PID. For each run, in alternating order, ``redis-benchmark`` runs its default
list (no ``-t``: PING, SET, GET, INCR, the list, set, hash and sorted-set pushes and pops,
LRANGE_100..600, MSET) at 50 clients, then three sorted-set commands of its own: ``ZADD``
of random members into a 10,000-member set, ``ZRANGE 0 99 WITHSCORES`` and
``ZRANGEBYSCORE`` of a score window. The table gives the medians and the ratio
workbench / redis-server.

    python benchmarks/default_tests.py --runs 3 --write    # about 6 minutes
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time

from tqdm import tqdm

from results import replace_section
from run import Server

SORTED_SET_TESTS = [
    ("ZADD (random member)", ["ZADD", "bench:z", "__rand_int__", "m:__rand_int__"]),
    ("ZRANGE 0 99 WITHSCORES", ["ZRANGE", "bench:z", "0", "99", "WITHSCORES"]),
    ("ZRANGEBYSCORE (100-wide window)", ["ZRANGEBYSCORE", "bench:z", "5000", "5100"]),
]


def _csv(out: str) -> dict[str, float]:
    rps = {}
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split('","')]
        if len(cells) > 1 and cells[0].strip('"') != "test":
            rps[cells[0].strip('"')] = float(cells[1].strip('"'))
    return rps


def measure(port: int, requests: int, clients: int) -> dict[str, float]:
    bench = shutil.which("redis-benchmark")
    base = [bench, "-p", str(port), "-c", str(clients), "--csv"]
    rps = _csv(subprocess.run(base + ["-n", str(requests)], capture_output=True, text=True,
                              timeout=900, check=True).stdout)
    # fill the sorted set first: 10,000 distinct members
    subprocess.run(base + ["-n", "20000", "-r", "10000", *SORTED_SET_TESTS[0][1]],
                   capture_output=True, text=True, timeout=300, check=True)
    for name, command in SORTED_SET_TESTS:
        out = subprocess.run(base + ["-n", str(requests), "-r", "10000", *command],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        rps[name] = next(iter(_csv(out).values()))
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {"workbench": {}, "redis-server": {}}
    with tempfile.TemporaryDirectory() as workdir, tqdm(total=2 * args.runs,
                                                        desc="default tests") as bar:
        for run in range(args.runs):
            order = ["workbench", "redis-server"] if run % 2 == 0 else ["redis-server", "workbench"]
            for kind in order:
                server = Server("workbench" if kind == "workbench" else "redis", "none",
                                tempfile.mkdtemp(dir=workdir))
                try:
                    for test, rps in measure(server.port, args.requests, args.clients).items():
                        results[kind].setdefault(test, []).append(rps)
                finally:
                    server.stop()
                bar.update()

    lines = [f"redis-benchmark, default test list plus three sorted-set commands, "
             f"`-c {args.clients} -n {args.requests}`, both servers in memory; median of "
             f"{args.runs} runs, requests/s; measured {time.strftime('%Y-%m-%d')} on "
             f"{os.cpu_count()} cores, Python {platform.python_version()}.", "",
             "| test | workbench | redis-server | ratio |", "|---|---:|---:|---:|"]
    for test, ours in results["workbench"].items():
        theirs = results["redis-server"].get(test)
        if not theirs:
            continue
        a, b = statistics.median(ours), statistics.median(theirs)
        lines.append(f"| {test} | {a:,.0f} | {b:,.0f} | {a / b:.2f} |")
    lines.append("")
    lines.append("Reproduce: `.venv/bin/python benchmarks/default_tests.py --runs 3 --write`.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section("default-tests", "## redis-benchmark's default tests\n\n" + text)


if __name__ == "__main__":
    main()
