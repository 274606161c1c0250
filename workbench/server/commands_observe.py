"""Watching a node from a client: ``MONITOR`` and ``PUBSUB``.

``MONITOR`` turns a connection into a live feed of every command the node runs, one
status line each, as Valkey prints them::

    +1796533963.998729 [0 127.0.0.1:54680] "SET" "a b" "x\\"y\\nz"

Commands from the replication stream show ``[db master]``; ``AUTH``/``HELLO`` arguments are
redacted. The feed shows what the node *executed*, in order -- not what became durable:
in the durable modes a line appears before the reply is released.
"""

from __future__ import annotations

import time

from ..resp import OK, ReplyError, Simple
from ..store.glob import glob_match
from .registry import handles

_REDACTED = {b"AUTH": 1, b"HELLO": 2, b"MIGRATE": 0}
_PRINTABLE = frozenset(range(0x20, 0x7f)) - {0x22, 0x5c}
_ESCAPES = {0x5c: b"\\\\", 0x22: b'\\"', 0x0a: b"\\n", 0x0d: b"\\r", 0x09: b"\\t",
            0x07: b"\\a", 0x08: b"\\b"}


def quoted(arg: bytes) -> bytes:
    """``arg`` as Valkey's sdscatrepr writes it: in double quotes, escaped."""
    if all(b in _PRINTABLE for b in arg):
        return b'"' + arg + b'"'
    out = bytearray(b'"')
    for b in arg:
        if b in _PRINTABLE:
            out.append(b)
        else:
            out += _ESCAPES.get(b) or b"\\x%02x" % b
    out += b'"'
    return bytes(out)


def monitor_line(db: int, origin: str, argv) -> Simple:
    name = argv[0].upper()
    if name in _REDACTED:
        keep = 1 if name == b"AUTH" else 2
        argv = list(argv[:keep]) + [b"(redacted)"] * (len(argv) - keep)
    text = b" ".join(quoted(a) for a in argv)
    return Simple("%.6f [%d %s] %s" % (time.time(), db, origin,
                                       text.decode("utf-8", "backslashreplace")))


def feed_monitors(server, conn, argv) -> None:
    """Send one executed command to every monitoring connection but its own."""
    origin = "master" if conn.is_primary_link else conn.addr
    line = None
    for watcher in list(server.monitors):
        if watcher is conn:
            continue
        if watcher.transport is None or watcher.transport.is_closing():
            server.monitors.discard(watcher)
            continue
        if line is None:
            line = monitor_line(conn.db, origin, argv)
        watcher.send(line)


@handles("MONITOR", 1, "admin noscript loading stale no_multi", group="server", since="1.0.0")
def monitor(server, conn, argv):
    """Listen for all requests received by the server in real time."""
    server.monitors.add(conn)
    return OK


# -- PUBSUB -------------------------------------------------------------------------------
_PUBSUB_HELP = [
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT", b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP", b"    Prints this help."]
# subcommand -> Valkey's arity for it (as for a command: negative = at least)
_PUBSUB_ARITY = {b"CHANNELS": -2, b"NUMPAT": 2, b"NUMSUB": -2, b"SHARDCHANNELS": -2,
                 b"SHARDNUMSUB": -2, b"HELP": 2}


@handles("PUBSUB", -2, "pubsub loading stale", group="pubsub", since="2.8.0")
def pubsub(server, conn, argv):
    """Inspect the state of the Pub/Sub subsystem."""
    sub = argv[1].upper()
    arity = _PUBSUB_ARITY.get(sub)
    name = argv[1].decode(errors="replace")
    if arity is None:
        return ReplyError(f"ERR unknown subcommand '{name}'. Try PUBSUB HELP.")
    if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
        return ReplyError(f"ERR wrong number of arguments for 'pubsub|{name.lower()}' command")
    if sub in (b"CHANNELS", b"SHARDCHANNELS"):
        if len(argv) > 3:
            return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                              f"'{name}'. Try PUBSUB HELP.")
        if sub == b"SHARDCHANNELS":
            return []                           # no sharded channels: one shard, no slots
        pattern = argv[2] if len(argv) == 3 else None
        return [ch for ch in server.pubsub.channels
                if pattern is None or glob_match(pattern, ch)]
    if sub == b"NUMSUB":
        channels = server.pubsub.channels
        return [part for ch in argv[2:] for part in (ch, len(channels.get(ch, ())))]
    if sub == b"SHARDNUMSUB":
        return [part for ch in argv[2:] for part in (ch, 0)]
    if sub == b"NUMPAT":
        return len(server.pubsub.patterns)
    return _PUBSUB_HELP
