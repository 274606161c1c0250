"""The AOF writer process: appends what it is sent to the AOF, fsyncs, reports.

Started by :class:`workbench.storage.aof_writer_process.AofWriterProcess` as
``python -I -S _aof_writer_child.py FD`` (standard library only: it starts in a few
milliseconds). FD is a stream socket to the node. Frames in: ``<B kind, q token,
I length>`` + payload, where kind is OPEN (first frame only; payload: the file's path),
APPEND (payload: bytes to append) or FAULT (token: an errno every write and fsync raises
from now on, 0 heals -- the failing-disk lever). Replies out: ``<q token, i errno,
q microseconds, q fsynced size>``: "everything up to frame ``token`` is fsynced, the file
is that long" (errno 0), or "frame ``token`` is not durable" (errno set).

Group commit happens here: while one fsync runs, new frames wait in the socket; the
next round writes all of them with one ``write`` and covers them with one ``fdatasync``.

Failures. A failing *write* (ENOSPC, the injected fault) keeps the unwritten bytes and is
retried every 100 ms, so the writer recovers when the disk does. A failing *fsync* is
final: after one, Linux may have dropped the dirty pages and a later fsync that succeeds
proves nothing, so the writer never reports success again (Valkey exits in that case
under ``appendfsync always``). At end-of-file (the node stopped or crashed) the writer
exits at once: frames it had not written are lost, as a crashed server loses the jobs
queued for its BIO thread.
"""

import errno
import os
import select
import socket
import struct
import sys
import time

FRAME = struct.Struct("<BqI")
REPLY = struct.Struct("<qiqq")
OPEN, APPEND, FAULT = 0, 1, 2
RETRY_INTERVAL = 0.1


class Writer:
    def __init__(self, sock):
        self.sock = sock
        self.inbox = bytearray()
        self.fd = None
        self.size = 0                  # the file's length: what it had at OPEN + our writes
        self.fault = 0
        self.unwritten = bytearray()   # appended frames not yet written to self.fd
        self.last_token = None         # the newest frame not yet reported durable
        self.failing = False
        self.broken = 0                # errno of a failed fsync: nothing is durable any more
        self.closed = False

    def receive(self) -> bool:
        """Take what has arrived into the inbox, without waiting; False if nothing had.

        One ``recv`` per round: whatever arrives after it waits for the next round,
        which comes at once (there is an fsync to do). System calls are the cost here."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.inbox += data
        return True

    def frames(self):
        while len(self.inbox) >= FRAME.size:
            kind, token, length = FRAME.unpack_from(self.inbox)
            if len(self.inbox) < FRAME.size + length:
                return
            payload = bytes(self.inbox[FRAME.size:FRAME.size + length])
            del self.inbox[:FRAME.size + length]
            yield kind, token, payload

    def handle(self, kind, token, payload):
        if kind == OPEN and self.fd is None:
            try:
                self.fd = os.open(payload.decode(), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                self.size = os.fstat(self.fd).st_size   # the only appender from now on
            except OSError as e:
                self.reply(token, e.errno or errno.EIO, 0, 0)
        elif kind == FAULT:
            self.fault = token
        elif kind == APPEND:
            self.unwritten += payload
            self.last_token = token
        else:                                              # a second OPEN, an unknown kind
            self.reply(token, errno.EINVAL, 0, 0)

    def sync(self):
        """Append and fsync what is pending; True when it is durable (a reply was sent)."""
        if self.last_token is None:
            return True
        if self.broken or self.fd is None:
            return self.fail(self.broken or errno.EBADF)
        started = time.perf_counter()
        try:
            if self.fault:
                raise OSError(self.fault, os.strerror(self.fault))
            while self.unwritten:           # a short write leaves the rest for the retry
                written = os.write(self.fd, self.unwritten)
                self.size += written
                del self.unwritten[:written]
        except OSError as e:
            return self.fail(e.errno or errno.EIO)
        try:
            os.fdatasync(self.fd)
        except OSError as e:
            self.broken = e.errno or errno.EIO
            return self.fail(self.broken)
        self.failing = False
        self.reply(self.last_token, 0, int((time.perf_counter() - started) * 1e6), self.size)
        self.last_token = None
        return True

    def fail(self, error):
        if not self.failing:
            self.failing = True
            self.reply(self.last_token, error, 0, 0)
        return False

    def reply(self, token, error, micros, size):
        data = REPLY.pack(token, error, micros, size)
        while data:                         # the socket is non-blocking; the node may lag
            try:
                data = data[self.sock.send(data):]
            except BlockingIOError:
                select.select([], [self.sock], [])

    def run(self):
        self.sock.setblocking(False)
        while True:
            if not self.receive() and not self.closed and not self.failing \
                    and self.last_token is None:
                select.select([self.sock], [], [])      # idle: wait for the next frame
                continue
            if self.closed:
                return
            for frame in self.frames():
                self.handle(*frame)
            if not self.sync():
                time.sleep(RETRY_INTERVAL)


if __name__ == "__main__":
    try:
        Writer(socket.socket(fileno=int(sys.argv[1]))).run()
    except (BrokenPipeError, ConnectionError, KeyboardInterrupt):
        pass
