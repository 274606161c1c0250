"""What recording costs: SET throughput of a cluster with and without ``record=True``.

A recording subscribes to the cluster's events, and with a subscriber every node
publishes its per-write events (the command, acks, fsyncs, held and released replies,
Raft commits), which a recorder thread samples (see ``workbench/recording.py``). This
measures the price on a busy cluster: for each mode, a fresh in-process cluster (the
recorder shares its GIL, as in a notebook) takes ``redis-benchmark -t set -c 50`` at the
primary in three setups, their order rotated run by run:

    plain     no subscriber: the nodes publish nothing
    bus only  a subscriber that does nothing: the price of publishing and delivering
    recorded  ``record=True``

and the medians of ``--runs``, the ratios to plain, and the entries the recording kept.
It also times ``Recording.record`` alone on synthetic busy events (microseconds per
event, no cluster).

    .venv/bin/python benchmarks/recording_cost.py --runs 3
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from run import bench_parser, check_deadline, have_redis_tools, redis_benchmark, rotated  # noqa: E402

import workbench as wb  # noqa: E402
from workbench import events as ev  # noqa: E402
from workbench.recording import Recording  # noqa: E402

MODES = ("async", "aof", "sync", "raft")
SETUPS = ("plain", "bus only", "recorded")
REQUESTS = 40_000


def one(mode: str, setup: str, requests: int) -> tuple[float, int, int]:
    """SET requests/s against ``mode``'s primary; and the recording's entries and the
    events it sampled into them (0, 0 without a recording)."""
    # 50 clients on one in-process shard: give a write time to commit rather than fail the
    # run (redis-benchmark stops at the first error reply)
    configs = {"durability_timeout_ms": 30_000} if mode in ("sync", "raft") else {}
    with wb.Cluster(mode=mode, record=setup == "recorded", **configs) as cluster:
        if setup == "bus only":
            cluster.events.subscribe(lambda event: None, max_queue=50_000)
        port = cluster.primary(timeout=10).port
        try:
            rps = redis_benchmark(port, "set", ["-c", "50", "-r", "1000"], requests)["SET"]
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"redis-benchmark failed against {mode} ({setup}): "
                               f"{(err.stderr or err.stdout or '').strip()[-300:]}") from None
        recording = cluster.recording
        if recording is None:
            return rps, 0, 0
        recording.settle(10)
        return rps, len(recording), recording.coalesced


def record_cost(writes: int = 50_000) -> float:
    """Microseconds ``Recording.record`` takes per event of a busy replicated primary
    (a command, a held reply, an ack and a release per write, 20,000 writes a second)."""
    events = []
    for i in range(writes):
        at = 1000.0 + i * 0.00005
        events += [ev.CommandExecuted("n1", command="SET", db=0, keys=(b"key:%d" % (i % 1000),),
                                      offset=i * 30, time=at),
                   ev.ReplyHeld("n1", client=i % 50, offset=i * 30, read=False, time=at),
                   ev.ReplicaAcked("n1", replica="n2", offset=i * 30, time=at),
                   ev.RepliesReleased("n1", committed_offset=i * 30, clients=1, time=at)]
    recording = Recording("sync", ["n1", "n2"])
    started = time.perf_counter()
    for event in events:
        recording.record(event)
    return (time.perf_counter() - started) / len(events) * 1e6


def main(argv=None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args(argv)
    if not have_redis_tools():
        return 2
    deadline = time.monotonic() + args.time_limit
    requests = max(1000, int(REQUESTS * args.scale))
    per_event = statistics.median(record_cost() for _ in range(3))
    rows = []
    for mode in args.modes.split(","):
        rps = {setup: [] for setup in SETUPS}
        kept, sampled = [], []
        for run in tqdm(range(args.runs), desc=mode, unit="run"):
            for setup in rotated(SETUPS, run):
                check_deadline(deadline)
                value, entries, coalesced = one(mode, setup, requests)
                rps[setup].append(value)
                if setup == "recorded":
                    kept.append(entries)
                    sampled.append(coalesced)
        tqdm.write(f"{mode}: " + "; ".join(f"{s} {v}" for s, v in rps.items()))
        medians = {setup: statistics.median(values) for setup, values in rps.items()}
        rows.append((mode, medians, statistics.median(kept), statistics.median(sampled)))
    print(f"\nredis-benchmark -t set -c 50 -r 1000 -n {requests}, medians of {args.runs} runs\n")
    print(f"{'mode':6} {'plain':>8} {'bus only':>9} {'recorded':>9} {'bus/plain':>10} "
          f"{'recorded/plain':>15} {'entries kept':>13} {'events sampled':>15}")
    for mode, m, entries, coalesced in rows:
        print(f"{mode:6} {m['plain']:8.0f} {m['bus only']:9.0f} {m['recorded']:9.0f} "
              f"{m['bus only'] / m['plain']:10.2f} {m['recorded'] / m['plain']:15.2f} "
              f"{entries:13.0f} {coalesced:15.0f}")
    print(f"\nRecording.record alone: {per_event:.2f} us per busy event (median of 3)")
    print(f"reproduce: .venv/bin/python benchmarks/recording_cost.py --runs {args.runs}"
          + (f" --scale {args.scale:g}" if args.scale != 1 else "")
          + (f" --modes {args.modes}" if args.modes != ",".join(MODES) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
