"""Wiring the commit gate into a running node: the write-behind AOF (``aof``, and
``sync`` with ``appendonly yes``) and the replicas' acknowledgements (``sync``).

The pure bookkeeping is :mod:`workbench.durability`; this module connects it to the
node's pieces:

* ``propagate`` hands each write's AOF bytes to the :class:`WriteBehindLog` with the
  replication offset the write reached;
* the log reports completed fsyncs (``_durable``), the AOF provider
  advances, and :func:`progress` releases held replies, forgets committed keys and runs
  deferred keyspace notifications;
* a failing disk turns every held reply into a ``MISCONF`` error and refuses new writes
  until the disk works again;
* losing the primary role, or turning gating off, settles every waiting client: a
  demotion disconnects them (they are never told a success that was not durable),
  switching gating off releases them;
* back-pressure: everything a not-yet-durable write keeps in memory -- its held reply,
  its uncommitted-key entry, its AOF bytes until the writer has fsynced them -- counts
  against one node-wide budget, ``reply-blocking-max-pinned-bytes``. A client whose
  reply is held while the budget is reached is *held back* (its socket is not read); when
  fsyncs bring the pinned bytes down to half the budget, the held-back clients go on, the
  longest-waiting first. Clients that hold nothing are never held back: ``PING`` and
  reads of committed keys answer even while the gate is paused and a flood waits.
"""

from __future__ import annotations

import asyncio
import os

from .. import events as ev
from ..durability import NOT_HELD, AofProvider, CommitGate, ReplicaProvider
from ..replication.eligibility import Eligibility
from ..resp import ReplyError
from ..storage.write_behind import WriteBehindLog


def wanted(server) -> bool:
    """Gating is on for a primary in ``sync`` mode, or with ``appendonly yes``,
    ``appendfsync always`` and ``aof-write-behind yes`` (Valkey's proposal gates exactly
    that combination)."""
    return server.leads and (sync_mode(server) or aof_gated(server) or server.raft is not None)


def sync_mode(server) -> bool:
    return server.config["durability-mode"] == "sync"


def aof_gated(server) -> bool:
    config = server.config
    return (server.aof is not None and config["appendfsync"] == "always"
            and config["aof-write-behind"])


def reconcile(server) -> None:
    """Turn gating on or off to match the configuration and role."""
    if wanted(server) and server.gate is None:
        enable(server)
    elif not wanted(server) and server.gate is not None:
        disable(server, disconnect=server.link is not None)


def enable(server) -> None:
    offset = server.repl.offset
    providers = []
    if sync_mode(server):
        server.replica_provider = ReplicaProvider(server.config["durability-replicas"],
                                                  lambda: server.repl.offset, offset)
        granted = server.node.saved_state().get("eligible", [])
        server.eligibility = Eligibility(server, server.replica_provider, granted)
        providers.append(server.replica_provider)
        server.log(f"Synchronous replication: writes wait for every eligible replica "
                   f"(at least {server.config['durability-replicas']}); eligible now: "
                   f"{', '.join(granted) or 'none'}")
    if server.raft is not None:
        providers.append(server.raft.provider)
    if aof_gated(server):
        providers.append(_enable_write_behind(server, offset))
    server.gate = CommitGate(providers)


def _enable_write_behind(server, offset: int) -> AofProvider:
    server.flush_aof()                      # anything buffered inline goes first
    server.aof_offset_at_fsync = max(server.aof_offset_at_fsync, offset)
    server.aof_provider = AofProvider(offset)
    server.write_behind = WriteBehindLog(
        server.aof, asyncio.get_running_loop(),
        on_durable=lambda offset, ms: _durable(server, offset, ms),
        on_error=lambda err: _failed(server, err),
        on_recovered=lambda: _recovered(server),
        on_started=lambda offset: server.events.active and _fsync_started(server, offset),
        name=f"{server.name}-aof-writer")
    server.log("Reply blocking enabled: AOF writes and fsyncs run behind the event loop "
               f"(writer process {server.write_behind.writer_pid})")
    return server.aof_provider


def disable(server, *, disconnect: bool) -> None:
    gate, server.gate = server.gate, None
    _cancel_hand_over(server)
    if server.write_behind is not None:
        _hand_over(server)                   # what this turn produced still goes to disk
        not_durable = server.write_behind.drain_and_stop()
        server.write_behind = None
        if not_durable:                      # the disk is failing, or too slow to wait for
            server.aof.take_back(not_durable)
            disconnect = True                # their writers were not told they are durable
            server._schedule_aof_flush()
    server.aof_provider = None
    if server.eligibility is not None:
        server.eligibility.stop()
    server.eligibility = server.replica_provider = None
    _cancel_deadlines(server)
    if gate is None:
        return
    for conn in list(gate.waiting):
        if disconnect:
            conn.close(abort=True)           # never answer with a success not made durable
        else:
            conn.release_held(None)
    for effect in gate.release_everything():
        effect()
    relieve(server)


def stop(server) -> None:
    """The node crashed: the writer stops as it is, and no hand-over runs after it (the
    AOF file is closed; a crash loses this turn's bytes as a real one loses its BIO jobs)."""
    _cancel_hand_over(server)
    _cancel_deadlines(server)
    if server.eligibility is not None:
        server.eligibility.stop()
    server.wb_pending, server.wb_pending_bytes = [], 0
    if server.write_behind is not None:
        server.write_behind.stop()


def submit(server, data: bytes) -> None:
    """Hand a write's AOF bytes to the writer: at once if it is idle, so its fsync starts
    now; else with the rest of this loop turn's writes at the turn's end.

    One hand-over per turn, not per write, while an fsync runs: the writer could not
    start on them before it ends anyway, and they join the next fsync together."""
    pending = server.wb_pending
    if not pending:
        if server.write_behind.idle:
            server.write_behind.submit(data, server.repl.offset)
            return
        server.wb_hand_over = asyncio.get_running_loop().call_soon(_hand_over, server)
    pending.append(data)
    server.wb_pending_bytes += len(data)


def _hand_over(server) -> None:
    server.wb_hand_over = None
    pending, server.wb_pending = server.wb_pending, []
    server.wb_pending_bytes = 0
    if pending and server.write_behind is not None:
        server.write_behind.submit(b"".join(pending), server.repl.offset, writes=len(pending))


def _cancel_hand_over(server) -> None:
    if server.wb_hand_over is not None:
        server.wb_hand_over.cancel()
        server.wb_hand_over = None


def _fsync_started(server, offset: int) -> None:
    server.events.publish(ev.FsyncStarted(server.name, offset=offset))


def _durable(server, offset: int, duration_ms: float) -> None:
    if server.gate is None or server.aof_provider is None:
        return
    server.aof_offset_at_fsync = max(server.aof_offset_at_fsync, offset)
    server.aof_provider.fsynced(offset)
    if server.events.active:
        server.events.publish(ev.FsyncDone(server.name, fsynced_bytes=server.aof.fsynced_size,
                                           offset=offset, duration_ms=duration_ms))
    server.repl.check_waiters(server.aof_offset_at_fsync)
    progress(server)


def progress(server) -> None:
    """The providers may have moved: release what is now committed."""
    gate = server.gate
    if gate is None:
        return
    before = gate.committed_offset
    effects = gate.advance()
    if gate.committed_offset == before:
        relieve(server)                     # the fsync may still have freed AOF bytes
        return
    released = 0
    for conn in gate.due():
        released += conn.release_held(gate.committed_offset)
    for effect in effects:
        effect()
    if server.events.active:
        server.events.publish(ev.RepliesReleased(server.name, committed_offset=gate.committed_offset,
                                                 clients=released))
        server.events.publish(ev.KeysCommitted(server.name, committed_offset=gate.committed_offset,
                                               uncommitted_keys=len(gate.uncommitted)))
    relieve(server)


# -- sync: a held write that does not commit in time ----------------------------------------

def write_timeout_error(server) -> ReplyError:
    if server.raft is None:
        return ReplyError("NOREPLICAS Timed out waiting for the eligible replicas to acknowledge "
                          "the write; it was executed and may still become durable (outcome "
                          "unknown)")
    if server.config["raft-bug-definite-timeout"]:
        return ReplyError("NOREPLICAS Not enough good replicas to write.")   # the lever's lie
    return ReplyError("NOREPLICAS Timed out waiting for a majority of the Raft log to store the "
                      "write; it was executed and may still commit (outcome unknown)")


def times_writes(server) -> bool:
    """Held writes get ``durability-timeout-ms`` (sync, raft); the AOF's are never timed."""
    return server.replica_provider is not None or server.raft is not None


def watch_write(server, conn, offset: int) -> None:
    """``conn``'s write reply waits for ``offset``: give it ``durability-timeout-ms``."""
    if not times_writes(server):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.config["durability-timeout-ms"] / 1000
    server.write_deadlines.append((deadline, conn, offset))
    if server.deadline_timer is None:
        server.deadline_timer = loop.call_at(deadline, _expire_writes, server)


def _expire_writes(server) -> None:
    server.deadline_timer = None
    gate = server.gate
    if gate is None:
        server.write_deadlines.clear()
        return
    loop = asyncio.get_running_loop()
    now, deadlines = loop.time(), server.write_deadlines
    error = None
    while deadlines and deadlines[0][0] <= now:
        _, conn, offset = deadlines.popleft()
        if offset <= gate.committed_offset or conn not in gate.waiting:
            continue
        error = error or write_timeout_error(server)
        server.write_timeouts += 1
        conn.time_out_write(offset, error, gate.committed_offset)
        if server.events.active:
            server.events.publish(ev.WriteTimedOut(server.name, client=conn.id, offset=offset,
                                                   committed_offset=gate.committed_offset))
    if deadlines:
        server.deadline_timer = loop.call_at(deadlines[0][0], _expire_writes, server)


def _cancel_deadlines(server) -> None:
    if server.deadline_timer is not None:
        server.deadline_timer.cancel()
        server.deadline_timer = None
    server.write_deadlines.clear()


# -- back-pressure: one budget for what not-yet-durable writes pin -------------------------

def pinned_bytes(server) -> int:
    """What not-yet-durable writes keep in memory now: held replies, uncommitted-key
    entries and deferred notifications (the gate), and AOF bytes not yet fsynced (this
    turn's and the write-behind log's). Bounded by ``reply-blocking-max-pinned-bytes``."""
    total = server.wb_pending_bytes
    if server.gate is not None:
        total += server.gate.pinned_bytes
    if server.write_behind is not None:
        total += server.write_behind.queued_bytes
    return total


def budget_reached(server) -> bool:
    """Checked as each reply is held, which is when the pinned bytes grow (and the peak
    is recorded: ``INFO reply_blocking`` shows it)."""
    pinned = pinned_bytes(server)
    if pinned > server.pinned_peak:
        server.pinned_peak = pinned
    budget = server.config["reply-blocking-max-pinned-bytes"]
    return budget > 0 and pinned >= budget


def hold_back(server, conn) -> None:
    """``conn``'s held reply took the node to its budget: stop reading it for now."""
    server.held_back[conn] = None
    server.held_back_count += 1
    conn.hold_back()


def relieve(server) -> None:
    """Let held-back clients go on once the pinned bytes are down to half the budget
    (at once when gating is off or the disk fails: nothing more is being pinned then).
    The longest-waiting go first, and only while the budget has room."""
    if not server.held_back or server.paused:
        return
    budget = server.config["reply-blocking-max-pinned-bytes"]
    pinning = server.gate is not None and server.aof_error is None and budget > 0
    if pinning and pinned_bytes(server) > budget // 2:
        return
    for conn in list(server.held_back):
        if pinning and budget_reached(server):
            return
        if conn in server.held_back:          # (a command run meanwhile may have let it go)
            del server.held_back[conn]
            conn.let_go()


def misconf(server) -> ReplyError:
    return ReplyError(f"MISCONF Errors writing to the AOF file: {server.aof_error}")


def _failed(server, err: OSError) -> None:
    """The disk failed: no held reply may claim success. Each becomes an error; the
    writes stay in memory and in the write-behind log, and become durable if the disk
    recovers -- so for the client their outcome is unknown, not failed."""
    server.aof_error = os.strerror(err.errno) if err.errno else str(err)
    server.log(f"Error writing to the AOF file: {server.aof_error}")
    gate = server.gate
    if gate is None:
        return
    error = misconf(server)
    for conn in list(gate.waiting):
        conn.fail_held(error)
    gate.waiting.clear()
    relieve(server)


def _recovered(server) -> None:
    server.aof_error = None
    server.log("AOF write error looks solved. The server can write again.")


def hold_offset(server, conn, spec, argv, wrote: int, read_elsewhere=()) -> int:
    """The offset this reply waits for (NOT_HELD: it may leave now). ``read_elsewhere``:
    (database, key) pairs of other databases the command looked at (MOVE, COPY)."""
    gate = server.gate
    offset = gate.offset_for_reply(wrote_offset=wrote, db=conn.db,
                                   keys=spec.keys(argv) if spec.first_key or spec.find_keys else (),
                                   keyspace_wide=spec.is_keyspace)
    for db, key in read_elsewhere:
        dirty = gate.uncommitted.offset_for(db, (key,))
        if dirty > gate.committed_offset and dirty > offset:
            if offset == NOT_HELD:
                gate.read_blocked_count += 1
            offset = dirty
    if offset != NOT_HELD and server.events.active:
        server.events.publish(ev.ReplyHeld(server.name, client=conn.id, offset=offset,
                                           read=wrote == NOT_HELD))
    return offset


def snapshot(server) -> dict:
    """A plain-data picture of the commit gate, for viewers (read on the node loop)."""
    gate, provider, worker = server.gate, server.aof_provider, server.write_behind
    replicas = server.replica_provider
    waiting = sorted(gate.waiting, key=lambda conn: conn.id) if gate else []
    return {
        "alive": True,
        "gated": gate is not None,
        "executed_offset": server.repl.offset,
        "committed_offset": gate.committed_offset if gate else None,
        "aof_fsynced_bytes": server.aof.fsynced_size if server.aof else None,
        "aof_fsynced_offset": server.fsynced_offset,
        "uncommitted_keys": len(gate.uncommitted) if gate else 0,
        "held_replies": [{"client": conn.id, "name": conn.name.decode(errors="replace"),
                          "command": conn.last_command.decode(errors="replace"),
                          "replies": len(conn.held), "bytes": conn.held.held_bytes,
                          "waits_for": conn.held.first_offset()} for conn in waiting],
        "paused": bool(provider is not None and provider.paused),
        "pinned_bytes": pinned_bytes(server),
        "held_back_clients": len(server.held_back),
        "group_commit_batches": worker.batches if worker else 0,
        "group_commit_writes": worker.batched_writes if worker else 0,
        "eligible": dict(replicas.eligible) if replicas else None,
        "replicas_acked_offset": replicas.durable_offset if replicas else None,
        "revoking": dict(server.eligibility.revoking) if server.eligibility else {},
        "durability_replicas": replicas.required if replicas else None,
    }
