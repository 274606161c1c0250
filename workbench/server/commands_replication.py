"""Replication commands: ROLE, REPLICAOF, PSYNC, REPLCONF, WAIT, WAITAOF, SENTINEL."""

from __future__ import annotations

import time

from .. import events as ev
from ..replication.primary import ReplicaPeer
from ..resp import OK, ReplyError, Simple
from . import dataset, gating
from .connection import NO_REPLY, Blocked
from .registry import handles

_LLONG_MAX = 2**63 - 1


@handles("ROLE", 1, "fast loading stale noscript", group="server", since="2.8.12")
def role(server, conn, argv):
    """The node's role in replication, its offset and its replicas or primary (raft: the
    leader answers as a master listing its followers, a follower as a replica of it)."""
    if server.raft is not None:
        return _raft_role(server)
    if server.link is None:
        return [b"master", server.repl.offset, server.repl.role_entries()]
    link = server.link
    state = {"connect": b"connect", "connecting": b"connecting", "handshake": b"handshake",
             "sync": b"sync", "connected": b"connected"}[link.status]
    offset = server.repl.offset if link.status == "connected" else -1
    return [b"slave", link.host.encode(), link.port, state, offset]


def _raft_role(server):
    raft, offset = server.raft, server.repl.offset
    if raft.serving:
        followers = [[name.encode(), b"127.0.0.1", str(server.node.client_port_of(name)).encode(),
                      str(match).encode()]
                     for name, match in raft.match_indexes().items()]
        return [b"master", offset, followers]
    leader, port = raft.leader_address()
    state = b"connected" if leader and leader != server.name else b"connect"
    return [b"slave", b"127.0.0.1", port, state, offset if leader else -1]


NOT_ELIGIBLE = ReplyError(
    "ERR this replica is not eligible for promotion: in sync mode only a replica its primary "
    "granted eligibility (caught up, acknowledging every write) is sure to hold every "
    "acknowledged write. Use REPLICAOF NO ONE FORCE to promote it anyway")


@handles("REPLICAOF", -3, "admin noscript stale no_async_loading", group="server", since="5.0.0")
def replicaof(server, conn, argv):
    """Make this node a replica of another, or a primary again (REPLICAOF NO ONE; in sync
    mode an ineligible replica refuses unless ``REPLICAOF NO ONE FORCE``)."""
    if server.raft is not None:
        return ReplyError("ERR REPLICAOF not allowed in raft mode: the Raft log decides who "
                          "leads (RAFT.TRANSFER hands leadership over)")
    if len(argv) > 4 or (len(argv) == 4 and not (argv[1].upper() == b"NO"
                                                 and argv[3].upper() == b"FORCE")):
        return ReplyError("ERR wrong number of arguments for 'replicaof' command")
    if argv[1].upper() == b"NO" and argv[2].upper() == b"ONE":
        if (server.link is not None and server.config["durability-mode"] == "sync"
                and not server.replica_eligible and len(argv) == 3):
            return NOT_ELIGIBLE
        if server.link is not None:
            server.become_primary()
            server.log("MASTER MODE enabled (user request)")
        return OK
    try:
        port = int(argv[2])
    except ValueError:
        return ReplyError("ERR Invalid master port")
    host = argv[1].decode(errors="replace")
    if host not in ("127.0.0.1", "localhost", "::1"):
        return ReplyError("ERR workbench nodes replicate over loopback only")
    if port == server.port:
        return ReplyError("ERR Can't replicate myself")
    if server.link is not None and (server.link.host, server.link.port) == (host, port):
        return Simple("OK Already connected to specified master")
    server.become_replica(host, port)
    return OK


handles("SLAVEOF", -3, "admin noscript stale", group="server")(replicaof)


@handles("REPLCONF", -1, "admin noscript loading stale", group="server", since="3.0.0")
def replconf(server, conn, argv):
    """Replication handshake options and acknowledgements (replica -> primary)."""
    if len(argv) % 2 == 0:
        return ReplyError("ERR syntax error")
    for i in range(1, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"listening-port":
            conn.listening_port = int(value)
        elif option == b"ack":
            peer = conn.replica
            if peer is not None:
                fack = int(argv[i + 3]) if len(argv) > i + 3 and argv[i + 2].lower() == b"fack" else None
                server.repl.on_ack(peer, int(value), fack, server.fsynced_offset)
                if server.events.active:
                    server.events.publish(ev.ReplicaAcked(server.name, replica=peer.name,
                                                          offset=peer.ack_offset))
                if server.eligibility is not None:     # sync: the replica provider moves
                    server.eligibility.acked(peer)
                    gating.progress(server)
            return NO_REPLY
        elif option == b"getack":
            if server.link is not None:
                server.link.send_ack()
            return NO_REPLY
        elif option in (b"capa", b"ip-address", b"version", b"rdb-only", b"rdb-filter-only"):
            pass
        else:
            return ReplyError(f"ERR Unrecognized REPLCONF option: {option.decode(errors='replace')}")
    return OK


@handles("PSYNC", -3, "admin noscript no_multi no_async_loading", group="server", since="2.8.0")
def psync(server, conn, argv):
    """A replica asks for the stream from an offset (partial) or a full copy."""
    if server.link is not None and server.link.status != "connected":
        return ReplyError("NOMASTERLINK Can't SYNC while not connected with my master")
    replid = argv[1].decode(errors="replace")
    try:
        wanted = int(argv[2])
    except ValueError:
        return ReplyError("ERR value is not an integer or out of range")
    repl = server.repl
    port = getattr(conn, "listening_port", 0)
    name = server.node.peer_name_for_port(port) or f"127.0.0.1:{port}"
    peer = ReplicaPeer(conn, "127.0.0.1", port, name)
    conn.replica = peer
    repl.replicas.append(peer)
    continued = repl.can_continue(replid, wanted)
    if continued:
        conn.write_raw(b"+CONTINUE %s\r\n" % repl.replid.encode())
        conn.write_raw(repl.backlog.since(wanted))
        server.log(f"Partial resynchronization request from {name} accepted, "
                   f"sending {repl.offset + 1 - wanted} bytes of backlog")
    else:
        server.log(f"Full resync requested by replica {name}")
        payload = dataset.dump(server, int(time.time() * 1000))
        repl.stream_db = -1           # the stream after a snapshot starts with a SELECT
        conn.write_raw(b"+FULLRESYNC %s %d\r\n" % (repl.replid.encode(), repl.offset))
        conn.write_raw(b"$%d\r\n" % len(payload) + payload)
    peer.state = "online"
    peer.ack_time = time.monotonic()
    peer.ack_offset = 0
    if server.eligibility is not None:
        server.eligibility.resynced(peer, full=not continued)
    return NO_REPLY


@handles("SYNC", 1, "admin noscript no_multi", group="server")
def sync(server, conn, argv):
    """The old full-sync-only handshake."""
    return ReplyError("ERR SYNC is not supported by workbench nodes; use PSYNC")


def _timeout_ms(raw: bytes):
    try:
        t = int(raw)
    except ValueError:
        return ReplyError("ERR timeout is not an integer or out of range")
    if t < 0:
        return ReplyError("ERR timeout is negative")
    if t > _LLONG_MAX - int(time.time() * 1000):
        return ReplyError("ERR timeout is out of range")
    return t


@handles("WAIT", 3, "noscript", group="generic", since="3.0.0")
def wait(server, conn, argv):
    """Block until the client's writes reached n replicas, or the timeout; reply the count.
    (raft: a write's reply already waited for a majority; WAIT answers at once with the
    followers whose log holds everything committed.)"""
    if server.raft is not None:
        if not server.raft.serving:
            return ReplyError("ERR WAIT cannot be used with replica instances.")
        for arg in argv[1:]:
            try:
                int(arg)
            except ValueError:
                return ReplyError("ERR value is not an integer or out of range")
        commit = server.raft.core.commit_index
        return sum(1 for match in server.raft.match_indexes().values()
                   if match >= commit)
    if server.link is not None:
        return ReplyError("ERR WAIT cannot be used with replica instances. Please also note "
                          "that if a replica is configured to be writable (which is not the "
                          "default) writes to replicas are just local and are not propagated.")
    try:
        numreplicas = int(argv[1])
    except ValueError:
        return ReplyError("ERR value is not an integer or out of range")
    timeout = _timeout_ms(argv[2])
    if isinstance(timeout, ReplyError):
        return timeout
    acked = server.repl.count_acks(conn.woff)
    if acked >= numreplicas or conn.multi is not None or server._in_exec is not None:
        return acked
    return Blocked(server.repl.add_waiter(conn.woff, numreplicas, timeout))


@handles("WAITAOF", 4, "noscript", group="generic", since="7.2.0")
def waitaof(server, conn, argv):
    """Block until the client's writes are fsynced locally and/or on n replicas."""
    try:
        numlocal = int(argv[1])
    except ValueError:
        return ReplyError("ERR value is not an integer or out of range")
    if not 0 <= numlocal <= 1:
        return ReplyError("ERR value is out of range, value must between 0 and 1")
    try:
        numreplicas = int(argv[2])
    except ValueError:
        return ReplyError("ERR value is not an integer or out of range")
    if numreplicas < 0:
        return ReplyError("ERR value is out of range, must be positive")
    timeout = _timeout_ms(argv[3])
    if isinstance(timeout, ReplyError):
        return timeout
    if server.link is not None:
        return ReplyError("ERR WAITAOF cannot be used with replica instances. Please also note "
                          "that writes to replicas are just local and are not propagated.")
    if numlocal and server.aof is None:
        return ReplyError("ERR WAITAOF cannot be used when numlocal is set but appendonly is "
                          "disabled.")
    fsynced = server.fsynced_offset
    local = 1 if fsynced >= conn.woff else 0
    acked = server.repl.count_acks(conn.woff, aof=True)
    if ((local or not numlocal) and acked >= numreplicas) or conn.multi is not None \
            or server._in_exec is not None:
        return [local, acked]
    return Blocked(server.repl.add_waiter(conn.woff, numreplicas, timeout, aof_local=numlocal,
                                          fsynced_offset=fsynced))


@handles("SENTINEL", -2, "admin noscript loading stale", group="sentinel")
def sentinel(server, conn, argv):
    """The co-located failover monitor's commands (asked by other monitors)."""
    monitor = server.node.monitor
    if monitor is None:
        return ReplyError("ERR no failover monitor runs beside this node")
    return monitor.handle_command(argv[1:])
