"""Durable SET throughput: the write-behind AOF next to inline fsync, no AOF and redis-server.

Four setups, each a fresh server in its own process on a free loopback port (through
``run.py``'s ``Server``), in one run, their order rotated from run to run:

    (a) workbench  appendonly yes, appendfsync always, aof-write-behind no   (inline fsync)
    (b) workbench  appendonly yes, appendfsync always, aof-write-behind yes  (the aof mode)
    (c) workbench  appendonly no                                             (no AOF)
    (d) redis-server --appendonly yes --appendfsync always

``redis-benchmark -t set`` at 1, 10 and 50 clients (no pipelining); medians of ``--runs``
runs and the ratios b/a, b/d, b/c. Also: the disk's fsync latency (``os.write`` +
``os.fsync`` of a 100-byte append, in the directory the nodes use), the round trip of a
single redis-py client's sequential SETs against (a) and (b), and the group-commit ratio
from ``INFO reply_blocking`` of (b). ``--write`` updates the write-behind section of
``benchmarks/RESULTS.md``.

    python benchmarks/write_behind.py --runs 3 --write
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results import replace_section  # noqa: E402
from run import (Server, bench_parser, check_deadline, command_line, cpu_seconds,  # noqa: E402
                 have_redis_tools, info, percentile, redis_benchmark, rotated, round_trips)

SCRIPT = os.path.basename(__file__)
ALWAYS = {"appendonly": "yes", "appendfsync": "always"}
# key: (label, server kind, (workbench config, redis-server arguments))
SETUPS = {
    "a": ("workbench, inline fsync", "workbench", ({**ALWAYS, "aof-write-behind": "no"}, [])),
    "b": ("workbench, write-behind", "workbench", ({**ALWAYS, "aof-write-behind": "yes"}, [])),
    "c": ("workbench, no AOF", "workbench", ({"appendonly": "no"}, [])),
    "d": ("redis-server, always", "redis-server",
          ({}, ["--appendonly", "yes", "--appendfsync", "always"])),
    # (b) again with its AOF in RAM: an fsync costs nothing there, so (e) is the commit
    # gate and the hand-over to the writer alone, and (e) - (b) is what the disk adds
    "e": ("workbench, write-behind, AOF in RAM", "workbench",
          ({**ALWAYS, "aof-write-behind": "yes"}, [])),
}
RAM_DIR = "/dev/shm"
LOADS = [(1, 10_000), (10, 40_000), (50, 100_000)]      # (clients, requests)
LATENCY_SETS = 2_000
FSYNC_ITERATIONS = 2_000
TARGETS = [("b/a", 4.0, "inline fsync"), ("b/d", 0.7, "redis-server always"),
           ("b/c", 0.7, "the no-AOF node")]


def fsync_latency(directory: str, iterations: int) -> list[float]:
    """Seconds per ``os.write`` + ``os.fsync`` of a 100-byte append."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    data = b"x" * 99 + b"\n"
    out = []
    try:
        for _ in range(iterations):
            t0 = time.perf_counter()
            os.write(fd, data)
            os.fsync(fd)
            out.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


def group_commit_counters(port: int) -> tuple[int, int]:
    fields = info(port, "reply_blocking")
    return (int(fields.get("reply_blocking_group_commit_writes", 0)),
            int(fields.get("reply_blocking_group_commit_batches", 0)))


def measure(runs: int, scale: float, deadline: float) -> dict:
    samples: dict = {}          # (setup, clients) -> [ops/s]
    batching: dict = {}         # clients -> [(writes, batches)] of setup (b)
    fsyncs: list[float] = []
    trips: dict = {"a": [], "b": []}
    cpu: dict = {}              # (setup, clients) -> [server CPU µs per SET]
    steps = runs * (len(SETUPS) * len(LOADS) + 1)
    with tempfile.TemporaryDirectory(prefix="wb-write-behind-") as workdir, \
            tempfile.TemporaryDirectory(prefix="wb-write-behind-", dir=RAM_DIR) as ramdir, \
            tqdm(total=steps, desc="write-behind", unit="step") as progress:
        for run in range(runs):
            progress.set_postfix_str(f"run {run + 1}: disk fsync")
            fsyncs += fsync_latency(tempfile.mkdtemp(dir=workdir), FSYNC_ITERATIONS)
            progress.update(1)
            for key in rotated(SETUPS, run):
                label, kind, persistence = SETUPS[key]
                check_deadline(deadline)
                progress.set_postfix_str(f"run {run + 1}: ({key}) {label}")
                server = Server(kind, persistence,
                                tempfile.mkdtemp(dir=ramdir if key == "e" else workdir))
                try:
                    for clients, requests in LOADS:
                        n = max(1000, int(requests * scale))
                        before = group_commit_counters(server.port) if key == "b" else None
                        cpu_before = cpu_seconds(server.proc.pid)
                        rps = redis_benchmark(server.port, "set", ["-c", str(clients)], n)
                        cpu.setdefault((key, clients), []).append(
                            (cpu_seconds(server.proc.pid) - cpu_before) / n * 1e6)
                        samples.setdefault((key, clients), []).append(rps["SET"])
                        if before is not None:
                            after = group_commit_counters(server.port)
                            batching.setdefault(clients, []).append(
                                (after[0] - before[0], after[1] - before[1]))
                        progress.update(1)
                    if key in trips:
                        trips[key] += round_trips(server.port, LATENCY_SETS)
                finally:
                    server.stop()
    return {"samples": samples, "batching": batching, "fsyncs": fsyncs, "trips": trips,
            "cpu": cpu}


def summarize(m: dict) -> dict:
    med = {k: statistics.median(v) for k, v in m["samples"].items()}
    ratios = {}
    for clients, _ in LOADS:
        b = med[("b", clients)]
        ratios[clients] = {"b/a": b / med[("a", clients)], "b/d": b / med[("d", clients)],
                           "b/c": b / med[("c", clients)], "e/c": med[("e", clients)] / med[("c", clients)]}
    per_batch = {}
    for clients, pairs in m["batching"].items():
        per_run = [w / b for w, b in pairs if b]
        per_batch[clients] = statistics.median(per_run) if per_run else float("nan")
    lat = {"disk": m["fsyncs"], "a": m["trips"]["a"], "b": m["trips"]["b"]}
    lat = {k: (percentile(v, 0.5) * 1e6, percentile(v, 0.99) * 1e6) for k, v in lat.items()}
    cpu = {k: statistics.median(v) for k, v in m["cpu"].items()}
    return {"median": med, "ratios": ratios, "per_batch": per_batch, "latency": lat, "cpu": cpu}


def report(s: dict, runs: int, scale: float) -> str:
    med, ratios, lat, per_batch = s["median"], s["ratios"], s["latency"], s["per_batch"]
    cmd = command_line(SCRIPT, runs, scale, python="python")
    head = (f"Medians of {runs} runs, measured {time.strftime('%Y-%m-%d')} on "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, `{cmd}`. "
            "SET ops/s from `redis-benchmark -t set` (no pipelining); (a) workbench "
            "`appendfsync always` with the fsync inline on the loop, (b) the same with "
            "`aof-write-behind yes` (the `aof` mode: write-behind + commit gate), (c) "
            "workbench `appendonly no`, (d) Debian `redis-server` 7.0 `appendfsync always`, "
            f"(e) = (b) with the AOF in RAM (`{RAM_DIR}`), where an fsync costs nothing: the "
            "commit gate and the hand-over alone.")
    lines = ["| clients | (a) inline fsync | (b) write-behind | (c) no AOF | "
             "(d) redis-server always | (e) write-behind, AOF in RAM | b/a | b/d | b/c | e/c "
             "| writes per fsync in (b) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for clients, _ in LOADS:
        r = ratios[clients]
        lines.append(
            f"| {clients} | {med[('a', clients)]:,.0f} | {med[('b', clients)]:,.0f} | "
            f"{med[('c', clients)]:,.0f} | {med[('d', clients)]:,.0f} | "
            f"{med[('e', clients)]:,.0f} | {r['b/a']:.2f}x | {r['b/d']:.2f}x | {r['b/c']:.2f}x | "
            f"{r['e/c']:.2f}x | {per_batch.get(clients, float('nan')):.1f} |")
    targets = ["| target at 50 clients | wanted | measured | |", "|---|---:|---:|---|"]
    met_all = []
    for name, want, what in TARGETS:
        got = ratios[50][name]
        met = got >= want
        met_all.append(met)
        targets.append(f"| {name}: write-behind vs {what} | >= {want:g}x | {got:.2f}x | "
                       f"{'met' if met else '**not met**'} |")
    latency = ["| latency | p50 | p99 |", "|---|---:|---:|",
               f"| disk: `os.write` + `os.fsync` of a 100-byte append ({FSYNC_ITERATIONS:,} x {runs}) "
               f"| {lat['disk'][0]:.0f} µs | {lat['disk'][1]:.0f} µs |",
               f"| SET round trip, one redis-py client, (a) inline fsync ({LATENCY_SETS:,} x {runs}) "
               f"| {lat['a'][0]:.0f} µs | {lat['a'][1]:.0f} µs |",
               f"| SET round trip, one redis-py client, (b) write-behind, reply held until fsynced "
               f"| {lat['b'][0]:.0f} µs | {lat['b'][1]:.0f} µs |"]
    cpu = s["cpu"]
    names = {"a": "(a) inline fsync", "b": "(b) write-behind (node + writer process)",
             "c": "(c) no AOF", "d": "(d) redis-server always",
             "e": "(e) write-behind, AOF in RAM (node + writer process)"}
    costs = ["| server time on a CPU per SET (schedstat) | 1 client | 10 clients | 50 clients |",
             "|---|---:|---:|---:|"]
    for key, label in names.items():
        costs.append(f"| {label} | " + " | ".join(f"{cpu[(key, c)]:.1f} µs" for c, _ in LOADS) + " |")
    return "\n\n".join([head, "\n".join(lines), "\n".join(targets), "\n".join(latency),
                        "\n".join(costs)]) + "\n"


def interpretation(s: dict, runs: int, scale: float) -> str:
    ratios, lat, per_batch = s["ratios"], s["latency"], s["per_batch"]
    r50, r1 = ratios[50], ratios[1]
    met = [(name, want, what, r50[name] >= want) for name, want, what in TARGETS]
    met_names = [f"{what} ({r50[n]:.2f}x, wanted {w:g}x)" for n, w, what, ok in met if ok]
    missed = [f"{what} ({r50[n]:.2f}x, wanted {w:g}x)" for n, w, what, ok in met if not ok]
    parts = [
        f"Group commit: at 50 clients the write-behind writer process fsynced "
        f"{per_batch.get(50, float('nan')):.1f} writes per fsync (median of the runs' "
        f"`reply_blocking_group_commit_writes / reply_blocking_group_commit_batches`), "
        f"{per_batch.get(10, float('nan')):.1f} at 10 clients and "
        f"{per_batch.get(1, float('nan')):.1f} at one client, where there is nothing to batch.",
        "Targets at 50 clients: "
        + "; ".join(([f"met against {x}" for x in met_names]) + [f"not met against {x}" for x in missed])
        + ".",
        f"The baseline (a) is not one fsync per command: it fsyncs once per event-loop turn "
        f"(`flush_aof`, as Valkey's `beforeSleep`), covering every write of that turn, so it "
        f"batches too ((a) runs {s['median'][('a', 50)] / s['median'][('a', 1)]:.1f}x faster at "
        f"50 clients than at one).",
        f"At one client write-behind runs at {r1['b/a']:.2f}x inline fsync: each SET's reply "
        f"waits for its own fsync either way (disk p50 {lat['disk'][0]:.0f} µs here), and "
        f"write-behind adds the hand-over to the writer process and back to the loop "
        f"(round trip p50 {lat['b'][0]:.0f} µs against {lat['a'][0]:.0f} µs inline).",
        f"Where the distance to the no-AOF node comes from: with the AOF in RAM (e) the "
        f"write-behind node reaches {r50['e/c']:.2f}x of (c) at 50 clients, so the commit gate "
        f"and the hand-over cost {100 * (1 - r50['e/c']):.0f}%; the disk takes (b) down to "
        f"{r50['b/c']:.2f}x: its fsyncs cost CPU time on this virtual machine, and the event "
        f"loop sleeps while every client waits on one and pays a wake-up when it ends.",
        f"No fsync policy can beat the node without an AOF, so b/a can be at most c/a, "
        f"{s['median'][('c', 50)] / s['median'][('a', 50)]:.2f}x here at 50 clients: the 4x "
        f"target presumes an inline baseline that fsyncs once per command, not once per turn.",
        "Absolute ops/s move 15-30% between runs on this shared 2-core machine; read the "
        "ratios, and ratios closer than ~15% as equal.",
    ]
    return " ".join(parts) + f" Reproduce with `{command_line(SCRIPT, runs, scale)}`.\n"


def main(argv=None) -> int:
    args = bench_parser(__doc__).parse_args(argv)
    if not have_redis_tools():
        return 2
    try:
        m = measure(args.runs, args.scale, time.monotonic() + args.time_limit)
    except (TimeoutError, subprocess.TimeoutExpired) as err:
        print(f"write_behind.py: {err}", file=sys.stderr)
        return 1
    s = summarize(m)
    block = report(s, args.runs, args.scale) + "\n" + interpretation(s, args.runs, args.scale)
    print(block)
    print("raw ops/s:", {f"{k[0]}@{k[1]}": [round(x) for x in v]
                         for k, v in sorted(m["samples"].items())})
    print("group commit (writes, batches):", m["batching"])
    if args.write:
        replace_section("write-behind", "## Durable writes: the write-behind AOF\n\n" + block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
