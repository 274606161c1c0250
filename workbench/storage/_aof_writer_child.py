"""The AOF writer process: appends what it is sent to the AOF, fsyncs, reports.

Started by :class:`workbench.storage.aof_writer_process.AofWriterProcess` as
``python -I -S _aof_writer_child.py FD`` (standard library only: it starts in a few
milliseconds). FD is a stream socket to the node. Frames in: ``<B kind, q token,
I length>`` + payload, where kind is OPEN (payload: the file's path; later frames go to
it), APPEND (payload: bytes to append) or FAULT (token: an errno every write and fsync
raises from now on, 0 heals -- the failing-disk lever). Replies out: ``<q token,
i errno, q microseconds, q fsynced size>``: "everything up to frame ``token`` is
fsynced, the file is that long" (errno 0), or "frame ``token`` could not be made durable
yet" (errno set; the writer keeps the bytes and retries every 100 ms).

Group commit happens here: while one fsync runs, new frames wait in the socket; the
next round writes all of them with one ``write`` and covers them with one ``fdatasync``.
At end-of-file (the node stopped or crashed) the writer exits at once: frames it had not
written are lost, as a crashed server loses the jobs queued for its BIO thread.
"""

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
        self.fault = 0
        self.unwritten = bytearray()   # appended frames not yet written to self.fd
        self.last_token = None         # the newest frame not yet reported durable
        self.failing = False
        self.closed = False

    def receive(self, block):
        """Read what has arrived (waiting for something if ``block``) into the inbox."""
        self.sock.setblocking(block)
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        finally:
            self.sock.setblocking(True)
        if not data:
            self.closed = True
        self.inbox += data
        while not self.closed and select.select([self.sock], [], [], 0)[0]:
            more = self.sock.recv(1 << 20)
            if not more:
                self.closed = True
            self.inbox += more

    def frames(self):
        while len(self.inbox) >= FRAME.size:
            kind, token, length = FRAME.unpack_from(self.inbox)
            if len(self.inbox) < FRAME.size + length:
                return
            payload = bytes(self.inbox[FRAME.size:FRAME.size + length])
            del self.inbox[:FRAME.size + length]
            yield kind, token, payload

    def sync(self):
        """Append and fsync the batch; True when it is durable (a reply was sent)."""
        if self.last_token is None:
            return True
        started = time.perf_counter()
        try:
            if self.fault:
                raise OSError(self.fault, os.strerror(self.fault))
            while self.unwritten:           # a short write leaves the rest for the retry
                del self.unwritten[:os.write(self.fd, self.unwritten)]
            os.fdatasync(self.fd)
            size = os.fstat(self.fd).st_size
        except OSError as e:
            if not self.failing:
                self.failing = True
                self.reply(self.last_token, e.errno or 5, 0, 0)
            return False
        self.failing = False
        self.reply(self.last_token, 0, int((time.perf_counter() - started) * 1e6), size)
        self.last_token = None
        return True

    def reply(self, token, error, micros, size):
        self.sock.sendall(REPLY.pack(token, error, micros, size))

    def run(self):
        while True:
            self.receive(block=not self.failing and self.last_token is None)
            if self.closed:
                return
            for kind, token, payload in self.frames():
                if kind == OPEN:
                    while not self.sync():                 # finish the old file first
                        time.sleep(RETRY_INTERVAL)
                        self.receive(block=False)
                        if self.closed:
                            return
                    if self.fd is not None:
                        os.close(self.fd)
                    self.fd = os.open(payload.decode(), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                elif kind == FAULT:
                    self.fault = token
                else:
                    self.unwritten += payload
                    self.last_token = token
            if not self.sync():
                time.sleep(RETRY_INTERVAL)


if __name__ == "__main__":
    try:
        Writer(socket.socket(fileno=int(sys.argv[1]))).run()
    except (BrokenPipeError, ConnectionError, KeyboardInterrupt):
        pass
