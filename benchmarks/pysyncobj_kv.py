"""A 3-node pysyncobj key-value store in this one process, and two ways to load it.

pysyncobj (https://github.com/bakwc/PySyncObj) is the best-known Raft library in Python:
a class that inherits ``SyncObj`` and marks its state-changing methods ``@replicated``
is replicated over TCP by the library's own Raft. ``raft_mode.py`` runs it as the peer of
the workbench's ``raft`` mode. Three nodes in one process share one GIL -- as the
workbench cluster's three nodes share one process and one event loop.

pysyncobj has no fsync per entry. Its default log (``journalFile=None``) is a Python list
in memory; the optional ``journalFile`` is an mmap it writes into and never flushes
(``msync``) before it calls a write committed. So a write it acknowledges has reached the
memory of a majority, not a disk; its figures are those of a store that does not fsync.

Two ways of keeping ``n`` writes in flight, both calling the leader's object (a call on a
follower is forwarded to the leader first, an extra hop a redis client of the leader
does not make):

* ``blocking_callers``: ``n`` threads, each calling ``set(key, value, sync=True)`` and
  waiting for its result before the next call -- ``n`` clients that each wait for their
  reply, as ``redis-benchmark -c n``'s connections do.
* ``callback_window``: one thread starts ``n`` writes with ``callback=``, and each
  callback (run on the leader's tick thread) starts the next write: ``n`` writes in flight
  with no thread switch per write, so less of the shared GIL goes to the client.

Both count a write when its callback says it was committed and applied on the leader.
"""

from __future__ import annotations

import threading
import time

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

KEY, VALUE = "key:__rand_int__", "xxx"       # what ``redis-benchmark -t set`` writes


class KV(SyncObj):
    """The replicated state: a dict, changed only through ``set``."""

    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf):
        super().__init__(self_addr, partners, conf)
        self._data: dict = {}

    @replicated
    def set(self, key, value):
        self._data[key] = value
        return True

    def get(self, key):
        return self._data.get(key)


class Trio:
    """Three ``KV`` nodes on the given 127.0.0.1 ports, in this process, with ``settings``
    (``SyncObjConf`` keywords) on every node. ``leader`` is the node that won the first
    election; ``close()`` stops all three and waits for their threads."""

    def __init__(self, ports: list[int], settings: dict, timeout: float = 20):
        addrs = [f"127.0.0.1:{p}" for p in ports]
        self.nodes: list[KV] = []
        try:
            for addr in addrs:
                conf = SyncObjConf(**settings)
                self.nodes.append(KV(addr, [a for a in addrs if a != addr], conf))
            self.leader = self._wait_for_leader(timeout)
        except BaseException:
            self.close()
            raise

    def _wait_for_leader(self, timeout: float) -> KV:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leaders = [n for n in self.nodes if n._isLeader()]
            if len(leaders) == 1 and all(n.isReady() for n in self.nodes):
                # one write through Raft: the leader has committed an entry of its term
                if leaders[0].set("warm", "up", sync=True, timeout=5):
                    return leaders[0]
            time.sleep(0.05)
        raise TimeoutError(f"pysyncobj: no leader after {timeout} s")

    def close(self) -> None:
        for node in self.nodes:
            node.destroy()                      # stops the node's tick thread at its next tick
        for node in self.nodes:
            try:
                node.destroy_synchronous()      # and waits for it
            except Exception:
                pass


def blocking_callers(node: KV, callers: int, seconds: float, timeout: float = 30) -> dict:
    """``callers`` threads, each ``set(..., sync=True)`` in a loop for ``seconds``. Returns
    writes, elapsed seconds, per-write latencies and failures."""
    latencies: list[list[float]] = [[] for _ in range(callers)]
    failures = [0] * callers
    start = threading.Barrier(callers + 1)
    stop_at = [0.0]

    def caller(i: int) -> None:
        start.wait()
        mine, perf = latencies[i], time.perf_counter
        while perf() < stop_at[0]:
            t0 = perf()
            try:
                node.set(KEY, VALUE, sync=True, timeout=timeout)
            except Exception:
                failures[i] += 1
                continue
            mine.append(perf() - t0)

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(callers)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join(seconds + timeout + 5)
    elapsed = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        raise TimeoutError("pysyncobj: a caller thread did not finish")
    flat = [x for per in latencies for x in per]
    return {"writes": len(flat), "elapsed": elapsed, "latencies": flat,
            "failures": sum(failures)}


def callback_window(node: KV, in_flight: int, seconds: float, timeout: float = 30) -> dict:
    """``in_flight`` writes started at once with ``callback=``; each completion starts the
    next until ``seconds`` have passed. Returns what ``blocking_callers`` returns."""
    lock = threading.Lock()
    latencies: list[float] = []
    state = {"failures": 0, "open": 0}
    done = threading.Event()
    perf = time.perf_counter
    stop_at = perf() + seconds

    def issue() -> None:
        t0 = perf()

        def on_result(result, error) -> None:
            now = perf()
            with lock:
                if error == FAIL_REASON.SUCCESS:
                    latencies.append(now - t0)
                else:
                    state["failures"] += 1
                again = now < stop_at
                if not again:
                    state["open"] -= 1
                    if state["open"] == 0:
                        done.set()
            if again:
                issue()
        node.set(KEY, VALUE, callback=on_result)

    t0 = perf()
    with lock:
        state["open"] = in_flight
    for _ in range(in_flight):
        issue()
    if not done.wait(seconds + timeout):
        raise TimeoutError(f"pysyncobj: {state['open']} writes still open after "
                           f"{seconds + timeout:.0f} s")
    return {"writes": len(latencies), "elapsed": perf() - t0, "latencies": latencies,
            "failures": state["failures"]}
