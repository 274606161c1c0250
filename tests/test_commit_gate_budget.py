"""Back-pressure in the ``aof`` mode: one node-wide budget for what held writes pin.

A write whose reply is held keeps its reply, its uncommitted-key entry and its AOF bytes
(until the writer has fsynced them) in memory. ``reply-blocking-max-pinned-bytes`` bounds
their sum: at the budget, clients whose replies are held stop being read until fsyncs
free half of it. The flood here is real: pipelining clients on raw sockets, each write
recorded in a history and checked against the data after.
"""

from __future__ import annotations

import selectors
import socket
import time

import pytest

import workbench as wb
from conftest import RawClient, reply_blocking_info, wait_for
from workbench.history import checkers
from workbench.history.model import WRITE, History

VALUE_SIZE = 1024
# What one more write of the flood pins past the budget: its value twice (the keyspace
# holds it anyway; the AOF bytes until fsynced), key, reply and their bookkeeping. Each
# client can add one such write after the budget is reached, before it is held back.
ONE_WRITE = 2 * 1024


class Flood:
    """Pipelining clients, each sending ``writes`` SETs of unique 1 KB values to its own
    keys as fast as the node reads them; every write is an operation of ``history``."""

    def __init__(self, port: int, clients: int, writes: int):
        self.history = History()
        self.selector = selectors.DefaultSelector()
        self.writes = writes
        self.conns = []
        for c in range(clients):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            requests = []
            for i in range(writes):
                key, value = f"flood:{c}:{i}", f"{c}:{i}:".ljust(VALUE_SIZE, "x")
                requests.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                    len(key), key.encode(), len(value), value.encode()))
                self.history.invoke(c * writes + i, WRITE, key, value, time=time.monotonic())
            conn = {"id": c, "sock": sock, "out": memoryview(b"".join(requests)),
                    "replies": bytearray(), "acked": 0}
            self.conns.append(conn)
            self.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    @property
    def answered(self) -> bool:
        return all(c["acked"] == self.writes for c in self.conns)

    def run(self, until, timeout: float = 60) -> None:
        """Send and read until ``until()`` (or every write is answered)."""
        deadline = time.monotonic() + timeout
        while not self.answered and not until():
            if time.monotonic() > deadline:
                pytest.fail("the flood did not finish in time")
            for key, events in self.selector.select(timeout=0.05):
                conn = key.data
                if events & selectors.EVENT_WRITE and conn["out"]:
                    try:
                        conn["out"] = conn["out"][conn["sock"].send(conn["out"]):]
                    except BlockingIOError:
                        pass
                    if not conn["out"]:
                        self.selector.modify(conn["sock"], selectors.EVENT_READ, conn)
                if events & selectors.EVENT_READ:
                    self._read(conn)

    def _read(self, conn) -> None:
        try:
            data = conn["sock"].recv(1 << 16)
        except BlockingIOError:
            return
        assert data, "the node closed a flooding connection"
        replies = conn["replies"]
        replies += data
        while len(replies) >= 5:
            assert replies[:5] == b"+OK\r\n", bytes(replies[:40])
            del replies[:5]
            self.history.ok(conn["id"] * self.writes + conn["acked"], time=time.monotonic())
            conn["acked"] += 1

    def close(self) -> None:
        self.selector.close()
        for conn in self.conns:
            conn["sock"].close()


def final_values(r, history: History) -> dict:
    keys = history.keys()
    final = {}
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        final.update(zip(chunk, r.mget(chunk)))
    return {k: v for k, v in final.items() if v is not None}


def test_a_write_flood_stays_within_the_pinned_budget_and_every_write_is_answered(tmp_path):
    """Reproduction: the only bound was ``reply-blocking-max-held-bytes``, per client and
    counting reply bytes alone (5 per +OK), so a flood could pin any amount: 50 clients x
    20k SETs of 1 KB grew the node by 2.3 GB, and unsynced AOF bytes queued for the
    writer without a limit. Now the node's pinned bytes -- held replies, uncommitted keys,
    AOF bytes not yet fsynced -- stay within the budget plus one write per client, and
    every write is still answered and kept."""
    clients, writes, budget = 10, 2_000, 64 * 1024
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path),
                    reply_blocking_max_pinned_bytes=str(budget)) as c:
        r = c.client()
        flood = Flood(c.nodes[0].port, clients, writes)
        try:
            flood.run(until=lambda: False)
        finally:
            flood.close()
        stats = reply_blocking_info(c)
        assert stats["reply_blocking_max_pinned_bytes"] == budget
        assert stats["reply_blocking_held_back_count"] > 0      # the budget did bind
        assert budget <= stats["reply_blocking_pinned_peak_bytes"] <= budget + clients * ONE_WRITE
        wait_for(lambda: reply_blocking_info(c)["reply_blocking_pinned_bytes"] == 0, what="everything durable")
        verdict = checkers.lost_writes(flood.history, final_values(r, flood.history))
        assert verdict.valid, verdict.anomalies[:3]
        assert verdict.details["ok"] == clients * writes


def test_a_paused_gate_holds_the_flood_back_but_not_other_clients(tmp_path):
    """With the gate paused (``DEBUG reply-blocking-pause aof``) no held reply can leave,
    so a flood reaches the budget and stays there: the node stops reading the flooding
    clients (before, it read and held the whole flood). Clients that hold nothing are
    still served -- ``PING``, a read of a committed key -- and a new writer is held back
    once it reaches the budget too; the resume releases everyone, and every write is
    kept."""
    clients, writes, budget = 5, 1_000, 128 * 1024
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path),
                    reply_blocking_max_pinned_bytes=str(budget)) as c:
        r = c.client()
        r.set("committed", "1")
        r.execute_command("DEBUG", "reply-blocking-pause", "aof")
        flood = Flood(c.nodes[0].port, clients, writes)
        try:
            flood.run(until=lambda: reply_blocking_info(c)["reply_blocking_held_back_clients"] == clients)
            stats = reply_blocking_info(c)
            assert budget <= stats["reply_blocking_pinned_peak_bytes"] <= budget + clients * ONE_WRITE
            # the writer fsynced the AOF bytes meanwhile; the held replies and dirty keys
            # stay pinned while the gate is paused, above the half that lets clients go
            assert budget // 2 < stats["reply_blocking_pinned_bytes"] <= budget + clients * ONE_WRITE
            assert r.info("keyspace")["db0"]["keys"] < clients * writes / 2
            assert r.ping() is True
            assert r.get("committed") == "1"
            late = RawClient(c.nodes[0].port)               # up to the budget, then no further
            late.send(b"".join(b"SET late:%d %s\r\n" % (i, b"v" * VALUE_SIZE) for i in range(200)))
            wait_for(lambda: reply_blocking_info(c)["reply_blocking_held_back_clients"] == clients + 1,
                     what="the late writer to be held back")
            assert reply_blocking_info(c)["reply_blocking_pinned_peak_bytes"] <= budget + (clients + 1) * ONE_WRITE
        except BaseException:
            flood.close()
            raise
        r2 = c.client()
        r2.execute_command("DEBUG", "reply-blocking-resume", "aof")
        try:
            flood.run(until=lambda: False)
        finally:
            flood.close()
        assert late.read_exactly_reply(5 * 200) == b"+OK\r\n" * 200
        assert reply_blocking_info(c)["reply_blocking_held_back_clients"] == 0
        verdict = checkers.lost_writes(flood.history, final_values(r2, flood.history))
        assert verdict.valid and verdict.details["ok"] == clients * writes
