"""Connection commands: handshake, transactions, pub/sub (CLIENT and COMMAND: commands_client.py)."""

from __future__ import annotations

from ..resp import NULL_ARRAY, OK, PONG, Map, ReplyError, Simple
from ..store import lookup
from ..durability import NOT_HELD
from .connection import NO_REPLY
from .registry import handles

VERSION = "7.2.4"


@handles("PING", -1, "fast stale loading pubsub", group="connection")
def ping(server, conn, argv):
    """Ping the server."""
    if len(argv) > 2:
        return ReplyError("ERR wrong number of arguments for 'ping' command")
    if (conn.channels or conn.patterns) and conn.proto == 2:
        return [b"pong", argv[1] if len(argv) > 1 else b""]
    return argv[1] if len(argv) > 1 else PONG


@handles("ECHO", 2, "fast stale loading", group="connection")
def echo(server, conn, argv):
    """Echo the given string."""
    return argv[1]


@handles("QUIT", -1, "fast stale loading noauth pubsub", group="connection")
def quit_(server, conn, argv):
    """Close the connection."""
    conn.closing = True
    return OK


@handles("AUTH", -2, "fast stale loading noauth no_multi", group="connection")
def auth(server, conn, argv):
    """Authenticate to the server."""
    if len(argv) > 3:
        return ReplyError("ERR syntax error")
    password = server.config["requirepass"]
    user = argv[1] if len(argv) == 3 else b"default"
    given = argv[-1]
    if not password:
        if len(argv) == 2:
            return ReplyError("ERR AUTH <password> called without any password configured for "
                              "the default user. Are you sure your configuration is correct?")
        return ReplyError("WRONGPASS invalid username-password pair or user is disabled.")
    if user != b"default" or given != password.encode():
        return ReplyError("WRONGPASS invalid username-password pair or user is disabled.")
    conn.authenticated = conn.parser.authenticated = True
    return OK


@handles("HELLO", -1, "fast stale loading noauth no_multi", group="connection", since="6.0.0")
def hello(server, conn, argv):
    """Handshake: choose RESP2 or RESP3, optionally authenticate and name the client."""
    proto = conn.proto
    i = 1
    if len(argv) > 1:
        try:
            proto = int(argv[1])
        except ValueError:
            return ReplyError("ERR Protocol version is not an integer or out of range")
        if proto not in (2, 3):
            return ReplyError("NOPROTO unsupported protocol version")
        i = 2
    name = None
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"AUTH" and i + 2 < len(argv):
            conn_auth = auth(server, conn, [b"AUTH", argv[i + 1], argv[i + 2]])
            if isinstance(conn_auth, ReplyError):
                return conn_auth
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(argv):
            name = argv[i + 1]
            i += 2
        else:
            return ReplyError(f"ERR Syntax error in HELLO option '{argv[i].decode(errors='replace')}'")
    if not conn.authenticated:
        return ReplyError("NOAUTH HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                          "authenticate the client and select the RESP protocol version at the "
                          "same time")
    if name is not None:
        conn.name = name
    conn.proto = proto
    return Map({b"server": b"valkey", b"version": VERSION.encode(), b"proto": proto,
                b"id": conn.id, b"mode": b"standalone",
                b"role": b"master" if server.role == "master" else b"replica",
                b"modules": []})


@handles("SELECT", 2, "fast stale loading", group="connection")
def select(server, conn, argv):
    """Change the selected database."""
    try:
        db = int(argv[1])
    except ValueError:
        return ReplyError("ERR value is not an integer or out of range")
    if not 0 <= db < len(server.keyspace.dbs):
        return ReplyError("ERR DB index is out of range")
    conn.db = db
    return OK


@handles("RESET", 1, "fast stale loading noauth pubsub no_multi", group="connection", since="6.2.0")
def reset(server, conn, argv):
    """Reset the connection."""
    server.unwatch(conn)
    server.pubsub.unsubscribe_all(conn)
    server.monitors.discard(conn)
    server.no_touch.discard(conn)
    conn.reply_off, conn.reply_skip, conn.silenced, conn.no_evict = False, 0, False, False
    conn.multi, conn.multi_error, conn.db, conn.proto, conn.name = None, False, 0, 2, b""
    conn.authenticated = not server.config["requirepass"]
    return Simple("RESET")


# -- transactions ------------------------------------------------------------------------
@handles("MULTI", 1, "fast loading stale", group="transactions")
def multi(server, conn, argv):
    """Start a transaction."""
    if conn.multi is not None:
        return ReplyError("ERR MULTI calls can not be nested")
    conn.multi = []
    conn.multi_error = False
    return OK


@handles("DISCARD", 1, "fast loading stale", group="transactions")
def discard(server, conn, argv):
    """Discard all commands issued after MULTI."""
    if conn.multi is None:
        return ReplyError("ERR DISCARD without MULTI")
    conn.multi = None
    server.unwatch(conn)
    return OK


@handles("EXEC", 1, "loading stale", group="transactions")
def exec_(server, conn, argv):
    """Execute all commands issued after MULTI, atomically."""
    if conn.multi is None:
        return ReplyError("ERR EXEC without MULTI")
    queued, conn.multi = conn.multi, None
    if conn.multi_error:
        conn.multi_error = False
        server.unwatch(conn)
        return ReplyError("EXECABORT Transaction discarded because of previous errors.")
    if conn.watch_dirty:
        server.unwatch(conn)
        return NULL_ARRAY
    server.unwatch(conn)
    if any(lookup(a[0]).is_write for a in queued):
        refusal = server.write_refusal() if not conn.is_primary_link else None
        if refusal is not None:
            return ReplyError(f"EXECABORT Transaction discarded because of: {refusal.text}")
    server._in_exec = collected = []   # (db, propagated, changed keys, flushed, events, elsewhere)
    replies, hold = [], NOT_HELD
    try:
        for a in queued:
            replies.append(server.execute(conn, a))
            hold, conn.hold_until = max(hold, conn.hold_until), NOT_HELD
    finally:
        server._in_exec = None
    if collected:
        hold = max(hold, propagate_transaction(server, conn, collected))
    if server.gate is not None and hold > server.gate.committed_offset:
        conn.hold_until = hold             # the whole transaction's reply waits for its end
    return replies


def propagate_transaction(server, conn, collected) -> int:
    """Propagate what a transaction (or a script: scripting.py) collected in
    ``server._in_exec``: one command as it is, several wrapped in MULTI/EXEC. Returns
    the offset it reached (``conn.woff``)."""
    commands = [argv for entry in collected for argv in entry[1]]
    first_db = collected[0][0]
    if len(commands) > 1 or len({entry[0] for entry in collected}) > 1:
        server.propagate([[b"MULTI"]], first_db)
        for db, props, *_ in collected:
            server.propagate(props, db)
        server.propagate([[b"EXEC"]], collected[-1][0])
    else:
        server.propagate(commands, first_db)
    conn.woff = server.repl.offset
    _after_exec(server, collected, conn.woff)
    return conn.woff


def _after_exec(server, collected, offset: int) -> None:
    """A transaction dirties its keys, and fires its notifications, at one offset."""
    gate = server.gate
    notify = server.pubsub.notify_flags
    for db, _, keys, flushed, events, elsewhere in collected:
        if gate is not None:
            gate.record_write(db, keys, offset)
            for other_db, key in elsewhere:
                gate.record_write(other_db, (key,), offset)
            if flushed:
                gate.record_flush(flushed, offset)
        if events and notify:
            if gate is not None:
                gate.defer(offset, lambda events=events: server.pubsub.keyspace_events(events))
            else:
                server.pubsub.keyspace_events(events)


@handles("WATCH", -2, "fast loading stale no_multi", 1, -1, 1, group="transactions")
def watch(server, conn, argv):
    """Watch keys to make the next MULTI/EXEC conditional."""
    if conn.multi is not None:
        return ReplyError("ERR WATCH inside MULTI is not allowed")
    for key in argv[1:]:
        item = (conn.db, key)
        if item not in conn.watched:
            conn.watched.add(item)
            server.watchers.setdefault(item, set()).add(conn)
    return OK


@handles("UNWATCH", 1, "fast loading stale", group="transactions")
def unwatch(server, conn, argv):
    """Forget all watched keys."""
    server.unwatch(conn)
    return OK


# -- pub/sub -----------------------------------------------------------------------------
def _send_all(conn, replies):
    for r in replies[:-1]:
        conn.send(r)
    return replies[-1]


@handles("SUBSCRIBE", -2, "pubsub loading stale", group="pubsub")
def subscribe(server, conn, argv):
    """Listen for messages published to channels."""
    return _send_all(conn, server.pubsub.subscribe(conn, argv[1:], False))


@handles("PSUBSCRIBE", -2, "pubsub loading stale", group="pubsub")
def psubscribe(server, conn, argv):
    """Listen for messages published to channels matching patterns."""
    return _send_all(conn, server.pubsub.subscribe(conn, argv[1:], True))


@handles("UNSUBSCRIBE", -1, "pubsub loading stale", group="pubsub")
def unsubscribe(server, conn, argv):
    """Stop listening to channels."""
    return _send_all(conn, server.pubsub.unsubscribe(conn, argv[1:], False))


@handles("PUNSUBSCRIBE", -1, "pubsub loading stale", group="pubsub")
def punsubscribe(server, conn, argv):
    """Stop listening to patterns."""
    return _send_all(conn, server.pubsub.unsubscribe(conn, argv[1:], True))


@handles("PUBLISH", 3, "pubsub loading stale fast", group="pubsub")
def publish(server, conn, argv):
    """Post a message to a channel."""
    return server.pubsub.publish(argv[1], argv[2])


__all__ = ["NO_REPLY", "VERSION"]
