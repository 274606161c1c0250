"""The replica's side: a link that copies the primary's dataset and then its stream.

The link is a small client of the primary, doing what Valkey's replica does::

    PING -> AUTH <masterauth>              (when masterauth is set)
         -> REPLCONF listening-port <port> -> REPLCONF capa eof capa psync2
         -> PSYNC <replid> <offset+1>      (or PSYNC ? -1 when it knows no history)
    <- +CONTINUE <replid>                  then the missing bytes of the stream
    <- +FULLRESYNC <replid> <offset>       then $<len> snapshot, then the stream

From then on every command from the primary is executed as-is (a replica never decides
anything itself) and the replica's offset advances by its exact size in bytes. It acks
that offset every second and whenever the primary asks (``REPLCONF GETACK``). If nothing
arrives for ``repl-timeout`` seconds the link is declared down and dialled again.
"""

from __future__ import annotations

import asyncio
import time

from ..resp import NEED_MORE, ReplyError, ReplyReader, RequestParser, encode_command
from .wire import authenticate, next_reply


class LinkError(Exception):
    pass


class ReplicaLink:
    def __init__(self, server, host: str, port: int, primary_name: str | None):
        self.server = server
        self.host, self.port = host, port
        self.primary_name = primary_name or f"{host}:{port}"
        self.status = "connect"           # connect, connecting, handshake, sync, connected
        self.last_io = time.monotonic()
        self.down_since = time.monotonic()
        self.sync_in_progress = False
        self.last_error: str | None = None   # why the last attempt failed, for the log
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._close_writer()

    def abort(self) -> None:
        """Stop at once, as a crashing process does: cut the connection, no goodbye."""
        self.stopped = True
        self._close_writer()
        if self._task is not None:
            self._task.cancel()

    def pause_reading(self, paused: bool) -> None:
        """Stop (or restart) reading the primary's stream: a SIGSTOPped process."""
        if self._writer is not None and not self._writer.transport.is_closing():
            if paused:
                self._writer.transport.pause_reading()
            else:
                self._writer.transport.resume_reading()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    def _set_status(self, status: str, full_sync: bool = False) -> None:
        if status != self.status:
            self.status = status
            self.server.link_status_changed(self, full_sync)

    async def _run(self) -> None:
        while not self.stopped:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, EOFError, LinkError, asyncio.TimeoutError, ValueError) as err:
                error = str(err) if isinstance(err, LinkError) else repr(err)
                if error != self.last_error:      # a wrong password fails every retry alike
                    self.server.log(f"Replica link to {self.primary_name} lost: {error}")
                self.last_error = error
            self._close_writer()
            if self.status != "connect":
                self.down_since = time.monotonic()
            self.sync_in_progress = False
            self._set_status("connect")
            await asyncio.sleep(0.1)

    async def _session(self) -> None:
        server = self.server
        timeout = server.config["repl-timeout"]
        self._set_status("connecting")
        host, port = server.route_to(self.host, self.port)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self._writer = writer
        replies = ReplyReader()

        async def ask(*argv):
            if writer.transport.is_closing():          # reset: uvloop would raise on write
                raise LinkError("connection reset by primary")
            writer.write(encode_command(list(argv)))
            try:
                reply = await next_reply(reader, replies, timeout)
            except EOFError:
                raise LinkError("connection closed by primary") from None
            self.last_io = time.monotonic()
            return reply

        self._set_status("handshake")
        pong = await ask(b"PING")
        if isinstance(pong, ReplyError) and not pong.text.startswith("NOAUTH"):
            raise LinkError(f"primary replied to PING: {pong.text}")
        password = server.config["masterauth"]
        if password:
            refused = await authenticate(reader, writer, replies, password, timeout)
            if refused is not None:
                raise LinkError(f"Unable to AUTH to PRIMARY: -{refused.text}")
        await ask(b"REPLCONF", b"listening-port", str(server.port).encode())
        await ask(b"REPLCONF", b"capa", b"eof", b"capa", b"psync2")
        repl = server.repl
        if server.known_history:
            psync = await ask(b"PSYNC", repl.replid.encode(), str(repl.offset + 1).encode())
        else:
            psync = await ask(b"PSYNC", b"?", b"-1")
        if isinstance(psync, ReplyError):
            raise LinkError(f"PSYNC refused: {psync.text}")
        # sync: a new session with a live primary ends the old grant (the primary revokes
        # it on its side too); it is earned again by catching up
        server.set_replica_eligible(False, "new sync session")
        words = psync.split()
        if words[0] == "FULLRESYNC":
            self.sync_in_progress = True
            self._set_status("sync", full_sync=True)
            replid, offset = words[1], int(words[2])
            while True:
                payload = replies.get_payload()
                if payload is not NEED_MORE:
                    break
                data = await asyncio.wait_for(reader.read(1 << 20), timeout)
                if not data:
                    raise LinkError("connection closed during full sync")
                self.last_io = time.monotonic()
                replies.feed(data)
            server.load_full_sync(payload, replid, offset)
            self.sync_in_progress = False
        elif words[0] == "CONTINUE":
            if len(words) > 1 and words[1] != repl.replid:
                repl.shift_history()            # the primary moved to a new history
                repl.replid = words[1]
        else:
            raise LinkError(f"unexpected PSYNC reply {psync!r}")
        self._set_status("connected")
        self.last_error = None
        server.known_history = True
        await self._stream(reader, writer, replies.take_rest(), timeout)

    async def _stream(self, reader, writer, first: bytes, timeout: float) -> None:
        server = self.server
        parser = RequestParser(with_sizes=True)
        raw = bytearray()
        ack_task = asyncio.get_running_loop().create_task(self._ack_every_second(writer))
        sync_acks = server.config["durability-mode"] == "sync"
        try:
            data = first
            while True:
                if data:
                    raw += data
                    consumed = 0
                    for item in parser.feed(data):
                        if not isinstance(item, tuple):
                            raise LinkError(f"protocol error in the stream: {item}")
                        argv, size = item
                        chunk = bytes(raw[consumed:consumed + size])
                        consumed += size
                        if argv[0].upper() == b"REPLCONF" and len(argv) > 1 \
                                and argv[1].upper() == b"GETACK":
                            self.send_ack(writer)       # the offset before GETACK, as Valkey
                            server.repl.feed(chunk)
                            continue
                        if argv[0].upper() == b"REPLCONF" and len(argv) == 4 \
                                and argv[1].upper() == b"ELIGIBLE":
                            # sync: the grant travels beside the stream, not in it: it
                            # takes no offset, here or on this node's own replicas
                            server.set_replica_eligible(True, f"granted at offset "
                                                              f"{int(argv[3])}")
                            continue
                        server.apply_from_primary(argv)
                        # The exact bytes go on, to this node's backlog and its own replicas.
                        server.repl.feed(chunk)
                    del raw[:consumed]
                    if sync_acks:
                        self.send_ack(writer)        # sync: the primary waits for this
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    raise LinkError("connection closed by primary")
                self.last_io = time.monotonic()
        finally:
            ack_task.cancel()

    def send_ack(self, writer=None) -> None:
        writer = writer or self._writer
        if writer is None or writer.transport.is_closing():
            return
        argv = [b"REPLCONF", b"ACK", str(self.server.repl.offset).encode()]
        fsynced = self.server.fsynced_offset
        if fsynced >= 0:
            argv += [b"FACK", str(fsynced).encode()]
        writer.write(encode_command(argv))

    async def _ack_every_second(self, writer) -> None:
        while True:
            self.send_ack(writer)
            await asyncio.sleep(1.0)
