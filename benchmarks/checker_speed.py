"""How long the linearizability checker takes on a generated register history.

The issue's target: a 10,000-operation register history over 10 keys, about 5 concurrent
client processes, checked in under 10 s. The history comes from
``simulated_register_history`` (a linearizable register with random latencies, 5% info and
5% failed operations), so the expected verdict is valid; the checker is also timed on a
copy with one read corrupted into a stale read (expected: not linearizable), and, for
context, on a harder single-key history with more concurrency.

    .venv/bin/python benchmarks/checker_speed.py            # prints; edits nothing
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace

from workbench.history import (History, dirty_reads, linearizable, simulated_register_history,
                               stale_reads)

TARGET_S = 10.0


def timed(fn, *args, runs: int):
    """The verdict and the median wall time of ``runs`` calls."""
    times, verdict = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        verdict = fn(*args)
        times.append(time.perf_counter() - t0)
    return verdict, statistics.median(times)


def corrupt_one_read(h: History) -> History:
    """Make the last ok read of some key return that key's first acknowledged value."""
    pairs = h.pairs()
    first = {}
    for p in pairs:
        if p.f == "write" and p.type == "ok":
            first.setdefault(p.key, p)
    for p in reversed(pairs):
        w = first.get(p.key)
        if p.f == "read" and p.type == "ok" and w is not None and p.value != w.value:
            ops = list(h)
            ops[p.completion.index] = replace(p.completion, value=w.value)
            return History(ops)
    raise ValueError("no read to corrupt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--processes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    h = simulated_register_history(args.seed, args.ops, processes=args.processes, keys=args.keys)
    generated = time.perf_counter() - t0
    kinds = {t: sum(1 for p in h.pairs() if p.type == t) for t in ("ok", "fail", "info")}
    print(f"python {platform.python_version()} on {platform.machine()}, seed {args.seed}")
    print(f"history: {args.ops} operations ({len(h)} events), {args.keys} keys, "
          f"{args.processes} processes; outcomes {kinds}; generated in {generated:.2f} s")

    verdict, t_lin = timed(linearizable, h, runs=args.runs)
    print(f"linearizable (valid history):     {t_lin:7.3f} s  valid={verdict.valid}"
          f"  [target < {TARGET_S:.0f} s: {'met' if t_lin < TARGET_S else 'MISSED'}]")
    bad = corrupt_one_read(h)
    verdict, t_bad = timed(linearizable, bad, runs=args.runs)
    print(f"linearizable (one stale read):    {t_bad:7.3f} s  valid={verdict.valid}")
    for name, fn in (("stale_reads", stale_reads), ("dirty_reads", dirty_reads)):
        verdict, t = timed(fn, h, runs=args.runs)
        print(f"{name + ':':33s} {t:7.3f} s  valid={verdict.valid}")

    hard = simulated_register_history(args.seed, args.ops, processes=20, keys=1)
    verdict, t_hard = timed(linearizable, hard, runs=1)
    print(f"linearizable (1 key, 20 processes): {t_hard:5.3f} s  valid={verdict.valid}")


if __name__ == "__main__":
    main()
