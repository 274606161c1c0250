"""A pipelined batch of writes is propagated exactly as the same writes sent one by one.

The server reuses the bytes a canonical request arrived as for the AOF and the
replication stream (``RequestParser.encodings``). Whatever shortcut it takes, the AOF
file, the replication offset and every reply must be the same as for one command per
round trip, including SELECT on a database change, MULTI/EXEC, rewritten commands,
inline (non-canonical) requests and commands that change nothing.
"""

from __future__ import annotations

import os
import socket

import workbench as wb
from workbench.resp import NEED_MORE, ReplyReader, encode_command

# A mix that exercises every propagation rule; no relative expiries (their absolute
# form depends on the clock) and nothing whose reply depends on time.
COMMANDS = [
    encode_command([b"SET", b"a", b"1"]),
    encode_command([b"SET", b"b", b"x" * 2000]),          # beyond the header table
    encode_command([b"GET", b"a"]),                        # a read: nothing propagated
    encode_command([b"INCR", b"n"]),
    encode_command([b"SET", b"a", b"2", b"GET"]),          # rewritten as SET a 2
    encode_command([b"SET", b"a", b"3", b"NX"]),           # changes nothing
    encode_command([b"SELECT", b"3"]),
    encode_command([b"SET", b"a", b"db3"]),                # SELECT 3 goes first
    encode_command([b"set", b"lower", b"case"]),           # propagated as spelled
    b"SET inline 'two words'\r\n",                         # not canonical
    encode_command([b"MULTI"]),
    encode_command([b"SET", b"t", b"1"]),
    encode_command([b"INCR", b"t"]),
    encode_command([b"EXEC"]),
    encode_command([b"SELECT", b"0"]),
    encode_command([b"DEL", b"a", b"missing"]),
    encode_command([b"SET", b"c", b"PXAT"]),               # a value that looks like an option
    encode_command([b"SET", b"e", b"1", b"PXAT", b"99999999999999"]),
    encode_command([b"MSET", b"m1", b"1", b"m2", b""]),
    encode_command([b"WAITAOF", b"1", b"0", b"0"]),        # blocks until fsynced
    encode_command([b"SET", b"after", b"wait"]),
    encode_command([b"RPUSH", b"l", b"x", b"y"]),
    encode_command([b"INFO", b"replication"]),             # offsets seen mid-batch
    encode_command([b"SET", b"last", b"1"]),
]


def read_replies(sock: socket.socket, count: int) -> list:
    reader = ReplyReader()
    replies = []
    while len(replies) < count:
        data = sock.recv(65536)
        assert data, "connection closed"
        reader.feed(data)
        while (reply := reader.get()) is not NEED_MORE:
            replies.append(reply)
    return replies


def run(commands: list, pipelined: bool) -> tuple:
    with wb.Cluster(nodes=1, appendfsync="always") as c:
        node = c.nodes[0]
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
            if pipelined:
                sock.sendall(b"".join(commands))
                replies = read_replies(sock, len(commands))
            else:
                replies = []
                for cmd in commands:
                    sock.sendall(cmd)
                    replies.extend(read_replies(sock, 1))
        info = c.client().info("replication")
        path = os.path.join(node.data_dir, node.config["appendfilename"])
        with open(path, "rb") as f:
            aof = f.read()
    return replies, aof, info["master_repl_offset"]


def normalize(replies: list) -> list:
    """INFO lists this node's random replid: keep only the offsets."""
    out = []
    for r in replies:
        if isinstance(r, bytes) and r.startswith(b"# Replication"):
            r = [line for line in r.split(b"\r\n") if b"offset" in line]
        out.append(r)
    return out


def test_pipelined_writes_propagate_exactly_as_one_by_one():
    one_replies, one_aof, one_offset = run(COMMANDS, pipelined=False)
    pipe_replies, pipe_aof, pipe_offset = run(COMMANDS, pipelined=True)
    assert normalize(pipe_replies) == normalize(one_replies)
    assert pipe_aof == one_aof
    assert pipe_offset == one_offset
    # the AOF holds what was propagated: the offset counts the same bytes
    assert b"*3\r\n$3\r\nset\r\n$5\r\nlower\r\n" in pipe_aof
    assert encode_command([b"SELECT", b"3"]) in pipe_aof
    assert one_offset > 0


def test_a_long_pipeline_of_sets_matches_one_by_one():
    commands = [encode_command([b"SET", b"key:%d" % (i % 7), b"v%d" % i]) for i in range(300)]
    commands[150:150] = [encode_command([b"SELECT", b"1"])]
    one = run(commands, pipelined=False)
    pipe = run(commands, pipelined=True)
    assert pipe[1] == one[1] and pipe[2] == one[2]
    assert pipe[0] == one[0]
