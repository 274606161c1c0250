"""Memory under a write flood in the ``aof`` mode: what not-yet-durable writes pin.

A workbench node with the write-behind AOF (``appendfsync always``, ``aof-write-behind
yes``) runs in its own process. ``--clients`` connections each pipeline ``--writes``
``SET``s of ``--value-size`` bytes as fast as the socket takes them, and read their
replies. Each client overwrites a ring of ``--keys`` keys, so the dataset stays small
and the growth measured is what the flood *pins* (held replies, uncommitted keys, AOF
bytes not yet fsynced), not the data itself.

With ``--paused`` the gate is frozen first (``DEBUG reply-blocking-pause aof``): no
reply may leave, so without a bound the node reads and holds the whole flood. The run
waits until the node stops taking more (or everything is executed), records the memory,
checks that ``PING`` and a read of a committed key still answer, resumes, and waits for
every reply.

Reported: VmRSS of the node's process when idle, its peak (VmHWM), the growth, the
largest ``reply_blocking_pinned_bytes`` seen, and that every write got ``+OK``.

    python benchmarks/pinned_flood.py                       # 50 clients x 20k SETs of 1 KB
    python benchmarks/pinned_flood.py --paused
    python benchmarks/pinned_flood.py --config reply-blocking-max-pinned-bytes=0   # no budget
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Server  # noqa: E402  (the side-by-side harness)

AOF_MODE = {"appendonly": "yes", "appendfsync": "always", "aof-write-behind": "yes",
            "enable-debug-command": "local"}
CHUNK = 256          # commands per send


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid``, in KiB (from /proc/<pid>/status)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


class FloodClient:
    """One pipelining connection: sends its SETs in chunks, counts ``+OK`` replies."""

    def __init__(self, port: int, index: int, writes: int, keys: int, value: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.index, self.writes, self.keys, self.value = index, writes, keys, value
        self.next_write = 0
        self.outbox = b""
        self.replies = bytearray()

    @property
    def expected(self) -> int:
        return 5 * self.writes

    def _refill(self) -> None:
        end = min(self.writes, self.next_write + CHUNK)
        head = b"*3\r\n$3\r\nSET\r\n"
        tail = b"$%d\r\n%s\r\n" % (len(self.value), self.value)
        parts = []
        for i in range(self.next_write, end):
            key = b"flood:%d:%d" % (self.index, i % self.keys)
            parts.append(head + b"$%d\r\n%s\r\n" % (len(key), key) + tail)
        self.next_write = end
        self.outbox = b"".join(parts)

    def writable(self) -> bool:
        if not self.outbox:
            self._refill()
        if not self.outbox:
            return False
        try:
            sent = self.sock.send(self.outbox)
        except BlockingIOError:
            return True
        self.outbox = self.outbox[sent:]
        return bool(self.outbox) or self.next_write < self.writes

    def readable(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        self.replies += data

    @property
    def done(self) -> bool:
        return len(self.replies) >= self.expected


def flood(port: int, clients: int, writes: int, keys: int, value: bytes, until) -> list:
    """Start the clients and run the flood until ``until(conns)`` is true or every reply
    has arrived."""
    conns = [FloodClient(port, i, writes, keys, value) for i in range(clients)]
    drive(conns, until)
    return conns


def drive(conns, until, limit_s: float = 300) -> bool:
    """Send and read until ``until(conns)`` is true, every reply is in, or ``limit_s``
    passed; True when every reply is in."""
    sel = selectors.DefaultSelector()
    for conn in conns:
        events = selectors.EVENT_READ
        if conn.outbox or conn.next_write < conn.writes:
            events |= selectors.EVENT_WRITE
        sel.register(conn.sock, events, conn)
    deadline = time.monotonic() + limit_s
    while not all(c.done for c in conns) and not until(conns) and time.monotonic() < deadline:
        for key, events in sel.select(timeout=0.2):
            conn = key.data
            if events & selectors.EVENT_READ:
                conn.readable()
            if events & selectors.EVENT_WRITE and not conn.writable():
                sel.modify(conn.sock, selectors.EVENT_READ, conn)
    sel.close()
    return all(c.done for c in conns)


def run(args) -> dict:
    config = dict(AOF_MODE)
    for item in args.config:
        name, _, value = item.partition("=")
        config[name] = value
    with tempfile.TemporaryDirectory() as workdir:
        server = Server("workbench", (config, []), workdir)
        try:
            r = redis.Redis(port=server.port, socket_timeout=30)
            r.set("committed", "1")
            time.sleep(1.0)                              # settle: imports, first fsyncs
            idle = memory_kb(server.proc.pid)["VmRSS"]
            value = os.urandom(args.value_size // 2).hex().encode()[:args.value_size]
            most_pinned = 0
            stalled_checks = {}

            def sample() -> dict:
                nonlocal most_pinned
                info = r.info("reply_blocking")
                most_pinned = max(most_pinned, info.get("reply_blocking_pinned_peak_bytes", 0))
                return info

            def watch(_conns) -> bool:
                """Sample INFO between rounds; never stop the flood early."""
                sample()
                return False

            started = time.monotonic()
            if args.paused:
                r.execute_command("DEBUG", "reply-blocking-pause", "aof")
                last = {"offset": -1, "since": time.monotonic()}

                def stalled(_conns) -> bool:
                    """The node has taken no more of the flood for a second."""
                    offset = sample()["reply_blocking_primary_repl_offset"]
                    now = time.monotonic()
                    if offset != last["offset"]:
                        last.update(offset=offset, since=now)
                    return now - last["since"] > 1.0 or now - started > 120

                conns = flood(server.port, args.clients, args.writes, args.keys, value, stalled)
                stalled_checks = {
                    "rss_while_stalled_kb": memory_kb(server.proc.pid)["VmRSS"],
                    "ping_while_stalled": r.ping(),
                    "committed_read_while_stalled": r.get("committed") == b"1",
                    "executed_while_stalled": sample()["reply_blocking_primary_repl_offset"],
                }
                r.execute_command("DEBUG", "reply-blocking-resume", "aof")
                answered = drive(conns, watch)   # the rest, after the resume
            else:
                conns = flood(server.port, args.clients, args.writes, args.keys, value, watch)
                answered = all(c.done for c in conns)
            elapsed = time.monotonic() - started
            memory = memory_kb(server.proc.pid)
            ok = all(bytes(c.replies) == b"+OK\r\n" * c.writes for c in conns)
            final = r.info("reply_blocking")
            return {"clients": args.clients, "writes": args.writes,
                    "value_size": args.value_size, "paused": args.paused,
                    "config": {k: v for k, v in config.items() if k not in AOF_MODE},
                    "idle_rss_kb": idle, "peak_rss_kb": memory["VmHWM"],
                    "growth_mb": round((memory["VmHWM"] - idle) / 1024, 1),
                    "most_pinned_bytes": most_pinned,
                    "budget": final.get("reply_blocking_max_pinned_bytes"),
                    "every_write_ok": ok and answered, "seconds": round(elapsed, 1),
                    **stalled_checks}
        finally:
            server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--writes", type=int, default=20_000, help="SETs per client")
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--keys", type=int, default=100, help="keys per client (overwritten in turn)")
    p.add_argument("--paused", action="store_true", help="freeze the gate during the flood")
    p.add_argument("--config", action="append", default=[], metavar="NAME=VALUE")
    result = run(p.parse_args())
    for name, value in result.items():
        print(f"{name:>30}: {value}")


if __name__ == "__main__":
    main()
