"""One running incarnation of a node: its keyspace, clients, AOF and replication.

A :class:`NodeServer` lives from ``start()`` to ``kill()``; a restart builds a new one
from what is on disk, as a real process would. Everything here runs on the cluster's
event-loop thread.

The path of one command (``execute``) is the heart of the node::

    look up the command table -> check arity, AUTH, MULTI, pub/sub mode
    -> a write?  refuse on a read-only replica (READONLY), with too few good replicas
                 (NOREPLICAS) or a failed AOF (MISCONF)
    -> run it (keyspace commands are pure; server commands see the node)
    -> propagate what changed: AOF buffer + replication stream, offset advances
    -> keyspace notifications, WATCH invalidation, an event for the viewers
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
import threading
import time

from .. import events as ev
from ..resp import QUEUED, ReplyError, encode_command
from ..store import Keyspace, lookup, unknown_command, wrong_arity
from ..replication.primary import ReplicationState
from ..replication.replica import ReplicaLink
from ..durability import NOT_HELD
from . import dataset, gating
from .blocking import UNBLOCKED_ROLE, BlockedClients
from .commands_admin import protected_refusal
from .commands_client import paused_reply
from .commands_introspection import ACCESS_STAMPS, Slowlog, slow_log, touch as touch_keys
from .commands_observe import feed_monitors
from .connection import Blocked, ClientConnection, NO_REPLY
from .persistence import AofPersistence, StreamClient
from .pubsub import PubSub
from .registry import SERVER_HANDLERS

READONLY = ReplyError("READONLY You can't write against a read only replica.")
NOREPLICAS = ReplyError("NOREPLICAS Not enough good replicas to write.")
NOAUTH = ReplyError("NOAUTH Authentication required.")
MASTERDOWN = ReplyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data "
                        "is set to 'no'.")
# Not shown to MONITOR: admin commands (CONFIG, DEBUG...) and those that say so.
_NOT_MONITORED = frozenset({"admin", "skip_monitor"})
# Commands that run inside MULTI instead of being queued.
_MULTI_CONTROL = frozenset({"EXEC", "DISCARD", "MULTI", "WATCH", "QUIT", "RESET"})
_SUBSCRIBE_OK = frozenset({"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
                           "PING", "QUIT", "RESET", "SSUBSCRIBE", "SUNSUBSCRIBE"})


class NodeServer(AofPersistence):
    def __init__(self, node):
        self.node = node
        self.name = node.name
        self.config = node.config
        self.events: ev.EventBus = node.events
        self.port = node.port
        self.data_dir = node.data_dir
        self.keyspace = Keyspace(self.config["databases"])
        self.repl = ReplicationState(self.config["repl-backlog-size"])
        self.repl.fsynced_source = lambda: self.fsynced_offset
        self.link: ReplicaLink | None = None
        self.known_history = True       # a primary's own history can be continued (psync2)
        self.clients: set[ClientConnection] = set()
        self.pubsub = PubSub(self)
        self.monitors: set = set()               # connections that sent MONITOR
        self.watchers: dict = {}                 # (db, key) -> set of connections
        self.blocked_clients = BlockedClients(self)   # BLPOP & co. waiting on keys
        self.aof = None                          # the AppendOnlyFile when appendonly is on
        self.aof_db = -1
        self.aof_offset_at_fsync = -1            # replication offset covered by the last fsync
        self.aof_error: str | None = None
        self.gate = None                         # CommitGate while replies are held (aof mode)
        self.aof_provider = None
        self.replica_provider = None             # sync: the eligible replicas' acknowledgements
        self.eligibility = None                  # sync, on a primary: grants and revocations
        self.replica_eligible = False            # sync, on a replica: granted by its primary
        self.amnesic = False                     # sync in memory: a primary restarted empty
        self.writers_paused = False              # sync: while a replica catches up for its grant
        self.write_deadlines = deque()           # sync: (deadline, client, offset) of held writes
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.write_timeouts = 0
        self.raft = None                         # raft: the RaftShell (log, peers, leadership)
        self.write_behind = None
        self.wb_pending: list = []               # this loop turn's AOF bytes, for the write-behind log
        self.wb_pending_bytes = 0
        self.wb_hand_over: asyncio.Handle | None = None   # hands wb_pending over at the turn's end
        self.held_back: dict = {}                # clients held back by the pinned-bytes budget, oldest first
        self.held_back_count = 0
        self.pinned_peak = 0
        self.paused = False
        self._aof_flush_pending = False
        self._fsync_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []
        self._primary_client = StreamClient()
        self._in_exec: list | None = None
        self.started = time.time()
        self.run_id = os.urandom(20).hex()
        self.stat_commands = 0
        self.stat_connections = 0
        self.stat_rejected = 0
        self.loaded_commands = 0
        self.log_lines: list[str] = []
        # introspection (commands_introspection.py): SLOWLOG, OBJECT IDLETIME, CLIENT PAUSE
        self.slowlog = Slowlog()
        self.slowlog_threshold_us = self.config["slowlog-log-slower-than"]   # -1: off
        self.key_access: dict = {}               # (db, key) -> unix second of its last access
        self.key_access_forgotten = 0            # the newest stamp dropped from key_access
        self.no_touch: set = set()               # CLIENT NO-TOUCH ON connections
        self.client_pause = None                 # ClientPause while CLIENT PAUSE lasts
        self.active_expire = True                # DEBUG SET-ACTIVE-EXPIRE 0 turns it off

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, replica_of: tuple | None) -> None:
        if self.config["appendonly"]:
            self._load_aof()
            self._open_aof()
        loop = asyncio.get_running_loop()
        if self.config["durability-mode"] == "raft":
            from ..consensus.shell import RaftShell
            self.raft = RaftShell(self, sock=self.node.take_raft_socket())
        self._server = await loop.create_server(lambda: ClientConnection(self), "127.0.0.1",
                                                self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.raft is not None:
            await self.raft.start()
        self._tasks.append(loop.create_task(self._cron()))
        if replica_of is not None:
            self.become_replica(*replica_of)
        gating.reconcile(self)

    def pause(self) -> None:
        """Freeze like a SIGSTOPped process: sockets stay open, nothing is read or done."""
        self.paused = True
        for conn in self.clients:
            conn.pause_reading()
        if self.link is not None:
            self.link.pause_reading(True)
        if self.raft is not None:
            self.raft.pause(True)

    def pause_writers(self, paused: bool) -> None:
        """Stop (or restart) reading from clients, replicas excepted: their commands wait
        in their sockets, as in Valkey's CLIENT PAUSE WRITE during a failover."""
        self.writers_paused = paused
        for conn in self.clients:
            if conn.replica is None:
                if paused:
                    conn.pause_reading()
                else:
                    conn.resume_reading()

    def resume(self) -> None:
        self.paused = False
        for conn in self.clients:
            conn.resume_reading()
        if self.link is not None:
            self.link.pause_reading(False)
        if self.raft is not None:
            self.raft.pause(False)
        gating.relieve(self)                     # what the budget let go of meanwhile

    def kill(self, power_loss: bool) -> int:
        """Stop at once, like a crashed process: no goodbye, no flush. Returns bytes lost."""
        self._stopping.set()
        gating.stop(self)
        if self._server is not None:
            self._server.close()
        for conn in list(self.clients):
            conn.close(abort=True)
        for task in self._tasks:
            task.cancel()
        if self.link is not None:
            self.link.abort()
        if self.raft is not None:
            self.raft.stop()
        self.repl.fail_waiters(ReplyError("ERR node killed"))
        self.pubsub.close()
        lost = 0
        if self.aof is not None:
            written, fsynced = self.aof.written_size, self.aof.fsynced_size
            self.aof.close()
            if power_loss:
                from ..storage import simulate_power_loss
                simulate_power_loss(self.aof.path, fsynced)
                lost = written - fsynced
        return lost

    # -- clients -----------------------------------------------------------------------
    def client_connected(self, conn: ClientConnection) -> None:
        if self._stopping.is_set():
            conn.close(abort=True)
            return
        self.clients.add(conn)
        self.stat_connections += 1
        if self.paused or self.writers_paused:
            conn.pause_reading()

    def client_disconnected(self, conn: ClientConnection) -> None:
        self.clients.discard(conn)
        if conn.replica is not None:
            self.repl.drop_replica(conn.replica)
            if self.eligibility is not None:
                self.eligibility.dropped(conn.replica, "disconnected")
        self.pubsub.unsubscribe_all(conn)
        self.monitors.discard(conn)
        self.unwatch(conn)
        self.blocked_clients.disconnected(conn)
        self.no_touch.discard(conn)
        self.held_back.pop(conn, None)
        if self.gate is not None and conn in self.gate.waiting:
            self.gate.waiting.discard(conn)
            self.gate.clients_disconnected_before_unblocking += 1

    # -- the command path ------------------------------------------------------------
    def execute(self, conn, argv: list, now_ms: int | None = None,
                verbatim: bytes | None = None):
        """Run one command for ``conn``; return its reply.

        A connection passes the clock it read for the whole batch (``now_ms``) and, when
        the command arrived in canonical RESP, the exact bytes it arrived as
        (``verbatim``, one command's share of a pipelined batch): a plain write is then
        propagated as those bytes instead of being encoded again.
        """
        spec = lookup(argv[0])
        self.stat_commands += 1
        if spec is None:
            return self.reject(conn, unknown_command(argv))
        if not spec.arity_ok(len(argv)):
            return self.reject(conn, wrong_arity(spec.name))
        if spec.is_server and "protected" in spec.flags:      # DEBUG: enable-debug-command
            refusal = protected_refusal(self, conn)
            if refusal is not None:
                return self.reject(conn, refusal)
        if not conn.authenticated and "noauth" not in spec.flags:
            return self.reject(conn, NOAUTH)
        if self.client_pause is not None:                        # CLIENT PAUSE: wait
            postponed = paused_reply(self, conn, spec, argv)
            if postponed is not None:
                return postponed
        if conn.multi is not None and spec.name not in _MULTI_CONTROL:
            if "no_multi" in spec.flags:
                return self.reject(conn, ReplyError("ERR Command not allowed inside a transaction"))
            conn.multi.append(argv)
            return QUEUED
        if (conn.channels or conn.patterns) and conn.proto == 2 and spec.name not in _SUBSCRIBE_OK:
            return ReplyError(f"ERR Can't execute '{spec.name.lower()}': only (P|S)SUBSCRIBE / "
                              "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
        conn.last_command = argv[0]
        first = spec.first_key
        if first and len(argv) > first and conn not in self.no_touch:
            # OBJECT IDLETIME: stamp the keys as accessed (at the batch's clock)
            now_s = now_ms // 1000 if now_ms is not None else int(time.time())
            if spec.last_key == first:
                item = (conn.db, argv[first])
                access = self.key_access
                if item in access:
                    del access[item]             # re-inserted last: the most recent
                access[item] = now_s
                if len(access) > ACCESS_STAMPS:
                    touch_keys(self, conn.db, (), now_s)     # forget the oldest
            else:
                touch_keys(self, conn.db, spec.keys(argv), now_s)
        if spec.is_write and not conn.is_primary_link:
            refusal = self.write_refusal()
            if refusal is not None:
                if self.events.active:
                    self.events.publish(ev.WriteRejected(self.name, command=spec.name,
                                                         error=refusal.text))
                return self.reject(conn, refusal)
        elif (self.link is not None and self.link.status != "connected"
              and not self.config["replica-serve-stale-data"] and "stale" not in spec.flags):
            return self.reject(conn, MASTERDOWN)
        elif (self.raft is not None and not conn.is_primary_link
              and (not spec.is_server or (spec.name == "EXEC" and self.raft.serving))):
            # a read (or a transaction, whose reads run inside it) may need proof that
            # this node still leads; on a follower, EXEC runs and refuses its reads itself
            admitted = self.raft.admit_read(conn, argv)
            if admitted is not None:
                if isinstance(admitted, ReplyError):
                    return self.reject(conn, admitted)
                return Blocked(admitted)         # runs once a quorum confirms the leadership
        if self.monitors and not spec.flags & _NOT_MONITORED:
            feed_monitors(self, conn, argv)
        # SLOWLOG: time the command while the threshold is on (-1: off)
        started = time.monotonic_ns() if self.slowlog_threshold_us >= 0 else 0
        try:
            if spec.is_server:
                reply = SERVER_HANDLERS[spec.name](self, conn, argv)
            else:
                reply = self.run_keyspace(conn, spec, argv, now_ms, verbatim)
        except Exception as err:         # a bug of ours: answer it, keep serving everyone
            self.log(f"Internal error running {spec.name}: {err!r}")
            reply = ReplyError(f"ERR internal error running '{spec.name.lower()}': "
                               f"{type(err).__name__}: {err}")
        if started and (time.monotonic_ns() - started) // 1000 >= self.slowlog_threshold_us:
            slow_log(self, conn, spec, argv, started)
        if self.blocked_clients.ready and self._in_exec is None:
            self.blocked_clients.serve()         # the command (a whole EXEC) has finished
        return reply

    def reject(self, conn, error: ReplyError) -> ReplyError:
        self.stat_rejected += 1
        if conn.multi is not None:
            conn.multi_error = True
        return error

    def write_refusal(self) -> ReplyError | None:
        if self.raft is not None:
            return self.raft.write_refusal()
        if self.aof_error is not None:
            return ReplyError(f"MISCONF Errors writing to the AOF file: {self.aof_error}")
        if self.link is not None:
            if self.config["replica-read-only"]:
                return READONLY
        elif self.replica_provider is not None and not self.replica_provider.enough():
            return NOREPLICAS                    # sync: too few eligible replicas; nothing ran
        elif self.config["min-replicas-to-write"] and self.repl.good_replicas(
                self.config["min-replicas-max-lag"]) < self.config["min-replicas-to-write"]:
            return NOREPLICAS
        return None

    def run_keyspace(self, conn, spec, argv, now_ms: int | None = None,
                     verbatim: bytes | None = None):
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        # the effects are read off the Context (Keyspace.run would wrap them in an Outcome)
        outcome = self.keyspace.run_context(spec, argv, conn.db, now_ms,
                                            replica=not self.leads)
        propagate = outcome.propagated
        wrote = NOT_HELD
        if propagate:
            if self._in_exec is not None:
                self._in_exec.append((conn.db, propagate, outcome.changed_keys, outcome.flushed,
                                      outcome.events, outcome.changed_elsewhere))
            elif verbatim is not None and len(propagate) == 1 and propagate[0] is argv:
                # propagated as received: reuse the request bytes (the canonical encoding)
                self.propagate(propagate, conn.db, encoded=verbatim)
            else:
                self.propagate(propagate, conn.db)
            conn.woff = self.repl.offset
            if self._in_exec is None:
                wrote = conn.woff
            if self.blocked_clients.waiting:     # keys clients wait on may be ready now
                self.blocked_clients.signal(conn.db, outcome.changed_keys,
                                            outcome.changed_elsewhere, outcome.flushed)
            if self.watchers:
                self.touch_keys(conn.db, outcome.changed_keys)
                for db, key in outcome.changed_elsewhere:
                    self.touch_keys(db, [key])
                for db in outcome.flushed:
                    self.touch_db(db)
        reply = outcome.reply
        gate = self.gate
        if gate is not None:
            reply = self._hold_reply(conn, spec, argv, outcome, wrote)
        if outcome.events and self.pubsub.notify_flags and (self._in_exec is None or not propagate):
            events = outcome.events                      # in EXEC: fired once it ends
            if gate is None:
                self.pubsub.keyspace_events(events)
            else:                                        # once the change is durable
                gate.defer(wrote, lambda: self.pubsub.keyspace_events(events))
        if self.events.active:
            self.events.publish(ev.CommandExecuted(
                self.name, command=spec.name, db=conn.db,
                keys=tuple(spec.keys(argv)), offset=self.repl.offset))
        return reply

    def _hold_reply(self, conn, spec, argv, outcome, wrote: int):
        """The commit gate's part of a command: mark what it dirtied and decide what its
        reply waits for (``conn.hold_until``)."""
        gate = self.gate
        if wrote != NOT_HELD:
            gate.record_write(conn.db, outcome.changed_keys, wrote)
            for db, key in outcome.changed_elsewhere:
                gate.record_write(db, (key,), wrote)
            if outcome.flushed:
                gate.record_flush(outcome.flushed, wrote)
        if wrote > gate.committed_offset and not self.events.active:
            gate.write_blocked_count += 1        # the common case: a write waits for itself
            hold = wrote
        else:
            hold = gating.hold_offset(self, conn, spec, argv, wrote, outcome.read_elsewhere)
        if hold != NOT_HELD and self.aof_error is not None:
            return gating.misconf(self)      # the disk is failing: this would never be released
        conn.hold_until = hold
        return outcome.reply

    def apply_from_primary(self, argv: list) -> None:
        """Execute one command of the primary's stream (replies go nowhere)."""
        self.execute(self._primary_client, argv)

    # -- propagation: the AOF and the replication stream -----------------------------
    def propagate(self, commands: list, db: int, encoded: bytes | None = None) -> None:
        """Append ``commands`` to the AOF and the replication stream, after a ``SELECT``
        when ``db`` changed; ``encoded`` is their RESP form when the caller has it."""
        if encoded is None:
            encoded = (encode_command(commands[0]) if len(commands) == 1
                       else b"".join([encode_command(c) for c in commands]))
        aof_bytes = None
        if self.aof is not None and self.aof_error is None:
            aof_bytes = encoded
            if self.aof_db != db:
                aof_bytes = encode_command([b"SELECT", b"%d" % db]) + encoded
                self.aof_db = db
            if self.write_behind is None:
                self.aof.feed(aof_bytes)
                self._schedule_aof_flush()
        if self.link is not None:
            return      # a replica's offset follows its primary's stream, not its own writes
        if self.raft is not None:
            if not self.raft.applying:           # a committed entry feeds the stream itself
                if self.repl.stream_db != db:
                    encoded = encode_command([b"SELECT", b"%d" % db]) + encoded
                    self.repl.stream_db = db
                self.repl.feed(encoded)
                self.raft.buffer(encoded)
            return
        if self.repl.stream_db != db:
            self.repl.feed(encode_command([b"SELECT", b"%d" % db]))
            self.repl.stream_db = db
        self.repl.feed(encoded)
        if self.write_behind is not None and aof_bytes is not None:
            gating.submit(self, aof_bytes)     # with the offset this write reached

    @property
    def role(self) -> str:
        return "master" if self.leads else "slave"

    @property
    def leads(self) -> bool:
        """This node takes writes: a primary, or (raft) the leader once it serves."""
        if self.raft is not None:
            return self.raft.serving
        return self.link is None

    def become_replica(self, host: str, port: int) -> None:
        if self.link is not None and (self.link.host, self.link.port) == (host, port):
            return
        old_link = self.link
        if old_link is not None:
            asyncio.get_running_loop().create_task(old_link.stop())
        self.repl.fail_waiters(ReplyError("UNBLOCKED force unblock from blocking operation, "
                                          "instance state changed (master -> replica?)"))
        self.blocked_clients.unblock_all(UNBLOCKED_ROLE, close=True)
        if self.gate is not None:
            gating.disable(self, disconnect=True)
        for peer in list(self.repl.replicas):
            peer.conn.close()
        self.replica_eligible = False            # a new primary: earn eligibility again
        self.link = ReplicaLink(self, host, port, self.node.peer_name_for_port(port))
        self.link.start()
        self.node.save_role(("replica", host, port))
        self.events.publish(ev.RoleChanged(self.name, role="slave",
                                           primary=self.link.primary_name))

    def set_replica_eligible(self, eligible: bool, why: str) -> None:
        """sync, on a replica: its primary granted (or a new session ended) eligibility."""
        if eligible == self.replica_eligible:
            return
        self.replica_eligible = eligible
        self.node.save_state(replica_eligible=eligible)
        self.log(f"This replica is {'now' if eligible else 'no longer'} eligible ({why})")

    def become_primary(self) -> None:
        if self.link is None:
            return
        link, self.link = self.link, None
        asyncio.get_running_loop().create_task(link.stop())
        self.replica_eligible = False
        self.repl.shift_history()
        self.node.save_role(("primary",))
        gating.reconcile(self)
        self.events.publish(ev.RoleChanged(self.name, role="master", primary=None))

    def route_to(self, host: str, port: int) -> tuple[str, int]:
        return self.node.route_to(host, port)

    def link_status_changed(self, link: ReplicaLink, full_sync: bool) -> None:
        self.events.publish(ev.ReplicaLinkChanged(self.name, primary=link.primary_name,
                                                  status=link.status, full_sync=full_sync))

    def load_full_sync(self, payload: bytes, replid: str, offset: int) -> None:
        """Replace the dataset with the primary's snapshot (a replica's full sync)."""
        self.amnesic = False                     # it holds the primary's data now
        self.keyspace.flush()
        for conns in self.watchers.values():
            for c in conns:
                c.watch_dirty = True
        dataset.load(self, payload, int(time.time() * 1000))
        self.repl.adopt(replid, offset)
        self._primary_client.db = 0
        self._primary_client.multi = None
        if self.aof is not None:
            try:
                self.aof.rewrite(payload)
                self.aof_db = -1
                self.aof_offset_at_fsync = offset
            except OSError as err:
                self._aof_failed(err)

    # -- WATCH ---------------------------------------------------------------------------
    def touch_keys(self, db: int, keys) -> None:
        for key in keys:
            for conn in self.watchers.get((db, key), ()):
                conn.watch_dirty = True

    def touch_db(self, db: int | None) -> None:
        for (wdb, _), conns in self.watchers.items():
            if db is None or wdb == db:
                for conn in conns:
                    conn.watch_dirty = True

    def unwatch(self, conn) -> None:
        for item in conn.watched:
            conns = self.watchers.get(item)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.watchers[item]
        conn.watched = set()
        conn.watch_dirty = False

    # -- periodic work -----------------------------------------------------------------
    async def _cron(self) -> None:
        """Active expiry, replication pings and timeouts (Valkey's serverCron, simplified)."""
        last_ping = time.monotonic()
        while not self._stopping.is_set():
            await asyncio.sleep(1 / self.config["hz"])
            if self.paused:
                continue
            now_ms = int(time.time() * 1000)
            if self.leads and self.active_expire:
                self._expire_cycle(now_ms)
            if self.blocked_clients.waiting and not self.leads:
                self.blocked_clients.check_role()     # a Raft step-down: -UNBLOCKED
            if self.aof_error is not None and self.write_behind is None:
                self.flush_aof()                  # retry a failed AOF write (as serverCron)
            now = time.monotonic()
            if self.link is None and now - last_ping >= self.config["repl-ping-replica-period"]:
                last_ping = now
                if any(r.state == "online" for r in self.repl.replicas):
                    self.repl.feed(encode_command([b"PING"]))
            timeout = self.config["repl-timeout"]
            # sync: a replica that leaves a write waiting longer than a write may wait
            # is dropped too (its eligibility then goes through the monitors)
            ack_timeout = (self.config["durability-timeout-ms"] / 1000
                           if self.eligibility is not None else None)
            for peer in list(self.repl.replicas):
                silent = now - peer.ack_time
                if peer.state == "online" and (silent > timeout or (
                        ack_timeout is not None and silent > ack_timeout
                        and peer.ack_offset < self.repl.offset)):
                    self.log(f"Disconnecting timedout replica (streaming sync): {peer.name}")
                    if self.eligibility is not None:
                        self.eligibility.dropped(peer, "timed out")
                    peer.conn.close(abort=True)
                    self.repl.drop_replica(peer)

    def _expire_cycle(self, now_ms: int) -> None:
        from ..store import Context
        for db_id, key in list(self.keyspace.expired_keys(now_ms)):
            ctx = Context(self.keyspace, self.keyspace.dbs[db_id], now_ms)
            ctx.lookup(key)
            if ctx.expired_dels:
                self.propagate(ctx.expired_dels, db_id)
                if self.watchers:
                    self.touch_keys(db_id, [key])
                events = ctx.events
                if self.gate is not None:
                    self.gate.record_write(db_id, [key], self.repl.offset)
                    if self.pubsub.notify_flags:
                        self.gate.defer(self.repl.offset,
                                        lambda: self.pubsub.keyspace_events(events))
                elif self.pubsub.notify_flags:
                    self.pubsub.keyspace_events(events)

    def log(self, line: str) -> None:
        self.log_lines.append(f"{time.strftime('%H:%M:%S')} {self.name} {line}")
        del self.log_lines[:-500]


__all__ = ["NodeServer", "NO_REPLY"]
