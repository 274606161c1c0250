"""A large request that arrives slowly: what it costs the server, and its other clients.

One client sends ``RPUSH list 0 1 ... N-1`` (200,000 arguments, about 2.5 MB) in 4 KB
pieces, one piece every 50 ms, as a slow or hostile client would. Meanwhile a second
client sends a PING every 10 ms. For each server (a workbench node through
``workbench cluster --nodes 1``, and Debian's ``redis-server``) it reports the server
process's CPU seconds over the trickle (from ``/proc/<pid>/stat``), and how many PINGs
the other client got answered and the slowest of them. A parser that keeps its progress across reads spends CPU in
proportion to the request's size; one that re-reads the request from its start on every
read spends it in proportion to the size squared.

    .venv/bin/python benchmarks/slow_request.py               # about 30 s per server
    .venv/bin/python benchmarks/slow_request.py --args 50000 --write
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import threading
import time

from workbench.resp import encode_command
from results import replace_section  # benchmarks/ is on the path: run as a script
from run import Server

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def read_reply_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def pinger(port: int, stop: threading.Event, latencies: list) -> None:
    """PING every 10 ms (or as soon as the last PONG came back) until ``stop``."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while not stop.wait(0.01):
            sent = time.monotonic()
            sock.sendall(b"PING\r\n")
            assert read_reply_line(sock) == b"+PONG\r\n"
            latencies.append(time.monotonic() - sent)


def trickle(port: int, pid: int, args: int, piece: int, interval: float) -> dict:
    request = encode_command([b"RPUSH", b"slow-list"] + [b"%d" % i for i in range(args)])
    latencies: list = []
    stop = threading.Event()
    ping_thread = threading.Thread(target=pinger, args=(port, stop, latencies), daemon=True)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"DEL slow-list\r\n")
        read_reply_line(sock)
        ping_thread.start()
        cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
        for i, at in enumerate(range(0, len(request), piece)):
            delay = wall_start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendall(request[at:at + piece])
        reply = read_reply_line(sock)
        cpu, wall = cpu_seconds(pid) - cpu_start, time.monotonic() - wall_start
        stop.set()
        ping_thread.join(10)
    assert reply == b":%d\r\n" % args, reply
    return {"bytes": len(request), "cpu": cpu, "wall": wall, "pings": len(latencies),
            "worst_ping_ms": max(latencies, default=0) * 1000}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--args", type=int, default=200_000, help="arguments of the RPUSH")
    parser.add_argument("--piece", type=int, default=4096, help="bytes sent at a time")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between pieces")
    parser.add_argument("--servers", default="workbench,redis",
                        help="comma-separated: workbench, redis")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    opts = parser.parse_args(argv)
    kinds = [k for k in opts.servers.split(",") if k != "redis" or shutil.which("redis-server")]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="wb-slow-") as workdir:
        for kind in kinds:
            server = Server(kind, "none", os.path.join(workdir, kind))
            try:
                rows[kind] = trickle(server.port, server.proc.pid, opts.args, opts.piece,
                                     opts.interval)
            finally:
                server.stop()
    lines = [f"RPUSH with {opts.args} arguments ({next(iter(rows.values()))['bytes']} bytes) "
             f"sent {opts.piece} bytes every {opts.interval * 1000:.0f} ms; another client "
             "PINGs every 10 ms meanwhile.", "",
             "| server | server CPU s | wall s | PINGs answered | slowest PING ms |",
             "|---|---|---|---|---|"]
    for kind, r in rows.items():
        lines.append(f"| {kind} | {r['cpu']:.2f} | {r['wall']:.1f} | {r['pings']} "
                     f"| {r['worst_ping_ms']:.0f} |")
    if "workbench" in rows and "redis" in rows and rows["redis"]["cpu"] > 0:
        lines += ["", "CPU ratio workbench / redis-server: "
                  f"{rows['workbench']['cpu'] / rows['redis']['cpu']:.1f}"]
    block = "\n".join(lines) + "\n"
    print(block)
    if opts.write:
        replace_section("slow-request", "## A large request arriving slowly\n\n" + block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
