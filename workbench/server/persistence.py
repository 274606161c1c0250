"""A node's append-only file: loading it, appending to it, and the fsync policies.

``NodeServer`` inherits these methods; they are kept here so that the command path in
``core.py`` reads on its own. The three policies, in Valkey's words: ``always`` -- fsync
after every write (here: once per event-loop turn, before the turn's replies leave, as
Valkey's ``beforeSleep``); ``everysec`` -- fsync once a second on a background thread;
``no`` -- let the OS flush when it wants. The ``aof`` mode's write-behind log replaces
the inline ``always`` flush (see ``gating.py``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from .. import events as ev
from ..durability import NOT_HELD
from ..resp import ReplyError
from ..storage import AofError, AppendOnlyFile, load as load_aof
from ..store import lookup
from . import dataset
from .registry import SERVER_HANDLERS


class StreamClient:
    """The pseudo-client that replays a stream: the primary's on a replica, the AOF on load."""

    def __init__(self):
        self.db = 0
        self.multi = None
        self.multi_error = False
        self.watched = set()
        self.watch_dirty = False
        self.is_primary_link = True
        self.authenticated = True
        self.channels = self.patterns = ()
        self.proto = 2
        self.woff = 0
        self.replica = None
        self.closing = False
        self.name = b""
        self.hold_until = NOT_HELD


class AofPersistence:
    """The AOF half of a NodeServer (a mixin: it uses the server's state)."""

    def _load_aof(self) -> None:
        path = os.path.join(self.data_dir, self.config["appendfilename"])
        result = load_aof(path, load_truncated=self.config["aof-load-truncated"],
                          databases=self.config["databases"])
        for line in result.warnings:
            self.log(line)
        now = int(time.time() * 1000)
        client = StreamClient()
        for logged in result.commands:            # the loader checked names and arity
            argv = logged.argv
            spec = lookup(argv[0])
            try:
                reply = self._execute_loaded(client, spec, argv, now)   # replays as a replica
            except Exception as e:      # a handler tripped on a record: refuse, never crash
                raise AofError(f"Cannot replay the {spec.name} command ({e}) reading the append "
                               f"only file {path} at offset {logged.start}",
                               path=path, offset=logged.start, reason=str(e)) from e
            if isinstance(reply, ReplyError) and reply.prefix not in ("WRONGTYPE",):
                self.log(f"AOF replay of {argv[0]!r} answered {reply.text}")
        self.loaded_commands = len(result.commands)

    def _execute_loaded(self, client, spec, argv, now):
        if spec.name == "SELECT":
            client.db = int(argv[1])
            return None
        if spec.name in ("MULTI", "EXEC"):
            return None                       # the loader already dropped torn transactions
        if spec.is_server:
            return SERVER_HANDLERS[spec.name](self, client, argv)
        return self.keyspace.run(spec, argv, client.db, now, replica=True).reply

    def _open_aof(self) -> None:
        self.aof = AppendOnlyFile(self.data_dir, self.config["appendfilename"])
        self.aof_db = -1
        self.aof_offset_at_fsync = self.repl.offset
        self.start_fsync_thread()

    def start_fsync_thread(self) -> None:
        """The once-a-second fsync of ``everysec``; started when the policy is (or becomes)
        everysec, and left running: it skips its turn under the other policies."""
        if self.config["appendfsync"] != "everysec" or (
                self._fsync_thread is not None and self._fsync_thread.is_alive()):
            return
        self._fsync_thread = threading.Thread(target=self._fsync_every_second, daemon=True,
                                              name=f"{self.name}-bio-fsync")
        self._fsync_thread.start()

    def start_aof(self) -> None:
        """``CONFIG SET appendonly yes``: write the dataset as a fresh AOF, then append."""
        self._open_aof()
        self.aof.rewrite(dataset.dump(self, int(time.time() * 1000)))
        self.aof_offset_at_fsync = self.repl.offset

    def stop_aof(self) -> None:
        aof, self.aof = self.aof, None
        aof.flush()
        aof.fsync()
        aof.close()

    def _schedule_aof_flush(self) -> None:
        if not self._aof_flush_pending:
            self._aof_flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush_aof)

    def flush_aof(self) -> None:
        """Once per loop turn, like Valkey's beforeSleep: write() the AOF buffer;
        fsync too under ``appendfsync always``, before any reply of this turn leaves."""
        self._aof_flush_pending = False
        if self.aof is None or self.write_behind is not None or self._stopping.is_set():
            return                                # (a killed node writes nothing more)
        offset = self.repl.offset
        try:
            self.aof.flush()
            if self.config["appendfsync"] == "always":
                started = time.perf_counter()
                self.aof.fsync()
                self._fsync_done(offset, started)
        except OSError as err:
            self._aof_failed(err)
            return
        if self.aof_error is not None:
            self.aof_error = None
            self.log("AOF write error looks solved. The server can write again.")

    def _fsync_done(self, offset: int, started: float) -> None:
        self.aof_offset_at_fsync = max(self.aof_offset_at_fsync, offset)
        if self.events.active:
            self.events.publish(ev.FsyncDone(self.name, fsynced_bytes=self.aof.fsynced_size,
                                             offset=offset,
                                             duration_ms=(time.perf_counter() - started) * 1e3))
        self.repl.check_waiters(self.aof_offset_at_fsync)

    def _aof_failed(self, err: OSError) -> None:
        self.aof_error = os.strerror(err.errno) if err.errno else str(err)
        self.log(f"Error writing to the AOF file: {self.aof_error}")

    def _fsync_every_second(self) -> None:
        """The background fsync of ``appendfsync everysec`` (Valkey's BIO thread)."""
        while not self._stopping.wait(1.0):
            aof = self.aof
            if aof is None or aof.closed:
                return
            if self.config["appendfsync"] != "everysec":
                continue                          # switched to "no" (or "always") meanwhile
            offset = self.repl.offset
            written = aof.written_size
            if written == aof.fsynced_size:
                continue
            started = time.perf_counter()
            try:
                aof.fsync()
            except (OSError, ValueError):
                continue
            loop = self.node.loop
            try:
                loop.call_soon_threadsafe(self._fsync_done, offset if aof.fsynced_size >= written
                                          else self.aof_offset_at_fsync, started)
            except RuntimeError:
                return

    @property
    def fsynced_offset(self) -> int:
        """The replication offset the AOF has fsynced; -1 with no AOF (as Valkey)."""
        return self.aof_offset_at_fsync if self.aof is not None else -1

    # -- roles -------------------------------------------------------------------------
