"""Reading client requests: bytes in, argument vectors out.

Theory of operation
-------------------
A client sends either a *multibulk* request (``*<n>\\r\\n`` then ``n`` bulk strings
``$<len>\\r\\n<bytes>\\r\\n``) or an *inline* one (a line of words, as typed into telnet).
The first byte decides. Valkey answers a malformed request with one ``-ERR Protocol
error: ...`` reply and then closes the connection; every command that arrived complete
before the bad bytes still runs. :meth:`RequestParser.feed` mirrors that: it returns the
complete commands in order, and if the bytes went bad, a :class:`ProtocolError` as the
last item. After an error the parser refuses further input.

Two readers share one grammar. The *fast reader* handles the common case: a buffer of
whole multibulk requests in their canonical spelling (``*<n>`` and ``$<len>`` in plain
decimal, every element a bulk string). It lets ``hiredis`` (a C RESP parser) split the
buffer, then *verifies* the result by spelling the commands canonically again and
comparing with the bytes received: hiredis also accepts things a server must refuse
(``+PING`` as an argument, RESP3 types, a bulk without its CRLF), so only an exact match
is trusted. Anything else (a partial request, an odd spelling, an error) falls back to
the *careful reader*, which walks the bytes like Valkey's ``processMultibulkBuffer`` and
names the exact error. Both readers give the same result for every input.

The careful reader keeps its progress between feeds, as Valkey keeps ``multibulklen``
and ``argv``: the arguments of a multibulk request read so far wait in the parser and
their bytes leave the buffer, so a large request arriving in small pieces is read once,
not again from its start on every piece (which would cost time in the square of its size).

No sockets and no clocks here: the server feeds bytes and acts on what comes out.
"""

from __future__ import annotations

import re

import hiredis

from ._replies import error_line

INLINE_MAX_SIZE = 64 * 1024          # PROTO_INLINE_MAX_SIZE
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024   # proto-max-bulk-len
DEFAULT_QUERY_BUFFER_LIMIT = 1024 * 1024 * 1024   # client-query-buffer-limit
UNAUTH_MAX_MULTIBULK = 10
UNAUTH_MAX_BULK = 16384
_INT_MAX = 2**31 - 1
# Canonical headers of short requests, looked up instead of formatted.
_COUNT_HEADERS = [b"*%d\r\n" % n for n in range(256)]
_BULK_HEADERS = [b"$%d\r\n" % n for n in range(1024)]
# hiredis allocates an aggregate's slots as soon as it reads the header, so a tiny
# "*3000000000\r\n" would cost gigabytes; such counts are left to the careful reader.
_LONG_AGGREGATE = re.compile(rb"[*%~>|]\d{4}")


class ProtocolError(Exception):
    """The client broke the protocol. ``reply`` is the exact error line to send before
    closing (``None`` when Valkey closes silently, as for a query buffer overflow)."""

    def __init__(self, reason: str, *, reply: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.reply = reply

    @property
    def wire(self) -> bytes:
        # latin-1: a reason quoting a client's byte (``got '\xff'``) carries that very byte,
        # as Valkey's printf does; error_line() turns a quoted CR or LF into a space
        return error_line(b"ERR Protocol error: " + self.reason.encode("latin-1", "replace"))


def strict_int(b: bytes) -> int | None:
    """Parse like Valkey's ``string2ll``: optional '-', digits, no leading zeros or spaces."""
    if not b or len(b) > 20:
        return None
    digits = b[1:] if b[:1] == b"-" else b
    if not digits.isdigit() or (digits[:1] == b"0" and (len(digits) > 1 or b[:1] == b"-")):
        return None
    return int(b)


class _NotCanonical(Exception):
    """The fast reader gives up: the bytes need the careful reader."""


class RequestParser:
    """Incremental request reader for one client connection.

    ``authenticated`` tightens the size limits for clients that have not yet passed
    ``AUTH`` (as Valkey does) and may be flipped by the server at any time.
    ``with_sizes=True`` makes :meth:`feed` return ``(argv, nbytes)`` pairs: a replica
    needs the exact byte size of every command to keep its replication offset.
    """

    __slots__ = ("_buf", "_need", "_broken", "_reader", "_argv", "_args_left", "_taken",
                 "authenticated", "max_bulk_len", "query_buffer_limit", "with_sizes",
                 "canonical", "encodings")

    def __init__(self, *, authenticated: bool = True, max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
                 query_buffer_limit: int = DEFAULT_QUERY_BUFFER_LIMIT, with_sizes: bool = False):
        self._buf = bytearray()
        self._need = 0        # bytes the buffer must hold before a parse can make progress
        self._broken = False
        # the multibulk request being read: its arguments so far, how many are still to
        # come, and the bytes of it already taken out of the buffer
        self._argv: list = []
        self._args_left = 0
        self._taken = 0
        self.authenticated = authenticated
        self.max_bulk_len = max_bulk_len
        self.query_buffer_limit = query_buffer_limit
        self.with_sizes = with_sizes
        self._reader = hiredis.Reader()   # the fast reader's splitter; empty between feeds
        # True when the commands of the last feed() were exactly the bytes fed, spelled
        # canonically (so those bytes can be propagated as they are); ``encodings`` then
        # holds each command's own bytes, in order (``encodings[i]`` is command ``i``).
        self.canonical = False
        self.encodings: list | tuple = ()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete command (the query buffer)."""
        return len(self._buf) + self._taken

    def feed(self, data: bytes) -> list:
        self.canonical = False
        self.encodings = ()
        if self._broken:
            return []
        if (not self._buf and not self._args_left and self.authenticated
                and not self.with_sizes and data[:1] == b"*"):
            commands = self._read_fast(data)
            if commands is not None:
                self.canonical = True
                return commands             # self.encodings was set by _read_fast
        self._buf += data
        if len(self._buf) < self._need:
            if self.buffered > self.query_buffer_limit:
                self._broken = True
                return [ProtocolError("query buffer limit reached", reply=False)]
            return []
        out: list = []
        pos = self._read_careful(out)
        del self._buf[:pos]
        if self._need:
            self._need -= pos        # it counted from the old start of the buffer
        if out and isinstance(out[-1], ProtocolError):
            self._broken = True
        elif self.buffered > self.query_buffer_limit:
            self._broken = True
            out.append(ProtocolError("query buffer limit reached", reply=False))
        return out

    def _read_fast(self, data: bytes):
        """Whole, canonical multibulk requests only; ``None`` means "use the careful reader".

        hiredis splits ``data``; the commands are then spelled canonically again and must
        give back exactly ``data``. That comparison is the proof: canonical multibulk has
        one reading, so equal bytes mean the careful reader would return the same
        commands. Other element types fail it, or raise ``TypeError`` while being spelled
        (integers, ``None``, nested arrays). Each command is spelled on its own, so on
        success ``self.encodings[i]`` is exactly the bytes command ``i`` arrived as.
        """
        if _LONG_AGGREGATE.search(data):
            return None
        reader = self._reader
        # "$<len>\r\n" of short arguments from the table; a miss (IndexError) means an
        # argument too long for it (or a limit below the table's): see _spell_long.
        headers = _BULK_HEADERS if self.max_bulk_len >= len(_BULK_HEADERS) - 1 else ()
        commands = []
        encodings = []
        try:
            reader.feed(data)
            while (argv := reader.gets()) is not False:
                if type(argv) is not list or not argv:
                    raise _NotCanonical
                commands.append(argv)
                spelled = [_COUNT_HEADERS[len(argv)]]     # IndexError: a long request
                try:
                    for arg in argv:
                        spelled += (headers[len(arg)], arg, b"\r\n")
                except IndexError:
                    spelled = [_COUNT_HEADERS[len(argv)], self._spell_long(argv)]
                encodings.append(b"".join(spelled))
            if b"".join(encodings) == data:
                self.encodings = encodings
                return commands
        except (_NotCanonical, TypeError, IndexError, hiredis.ProtocolError):
            pass
        self._reader = hiredis.Reader()    # drop whatever hiredis still holds
        return None

    def _spell_long(self, argv: list) -> bytes:
        """The arguments of ``argv`` spelled canonically, for any length up to the limit."""
        parts = []
        for arg in argv:
            n = len(arg)
            if n > self.max_bulk_len:
                raise _NotCanonical         # the careful reader names the error
            parts.append(b"$%d\r\n%b\r\n" % (n, arg))
        return b"".join(parts)

    def _read_careful(self, out: list) -> int:
        """Parse the buffer into ``out`` (whole commands, or a ProtocolError last); return
        the bytes consumed. A multibulk request in progress is consumed too: its arguments
        wait in ``self._argv`` for the rest."""
        buf = self._buf
        end = len(buf)
        pos = 0
        self._need = 0
        try:
            while pos < end:
                if not self._args_left:          # a new request starts here
                    if buf[pos] == 0x2A:   # '*'
                        step = self._read_count(buf, pos, end)
                    else:
                        step = self._read_inline(buf, pos, end)
                    if step == pos:              # its first line is incomplete
                        break
                    self._taken += step - pos
                    pos = step
                if self._args_left:
                    step = self._read_arguments(buf, pos, end)
                    self._taken += step - pos
                    pos = step
                    if self._args_left:          # the rest has not arrived yet
                        break
                argv, self._argv = self._argv, []
                if argv:                         # empty lines and ``*0`` are ignored
                    out.append((argv, self._taken) if self.with_sizes else argv)
                self._taken = 0
        except ProtocolError as error:
            out.append(error)
            return end
        return pos

    def _read_inline(self, buf, pos: int, end: int) -> int:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if end - pos > INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            return pos
        line = bytes(buf[pos:nl])
        if line.endswith(b"\r"):
            line = line[:-1]
        argv = split_args(line)
        if argv is None:
            raise ProtocolError("unbalanced quotes in request")
        self._argv = argv
        return nl + 1

    def _read_count(self, buf, pos: int, end: int) -> int:
        """The ``*<n>\\r\\n`` line that opens a multibulk request."""
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= end:
            if end - pos > INLINE_MAX_SIZE:
                raise ProtocolError("too big mbulk count string")
            return pos
        count = strict_int(bytes(buf[pos + 1:cr]))
        if count is None or count > _INT_MAX:
            raise ProtocolError("invalid multibulk length")
        if count > 0:                # a count <= 0 is an empty request, ignored
            if not self.authenticated and count > UNAUTH_MAX_MULTIBULK:
                raise ProtocolError("unauthenticated multibulk length")
            self._args_left = count
        return cr + 2

    def _read_arguments(self, buf, pos: int, end: int) -> int:
        """Read ``$<len>\\r\\n<bytes>\\r\\n`` arguments of the request in progress until it is
        whole or the buffer ends; return where reading stopped.

        An argument is taken whole or not at all: when its value has not fully arrived,
        reading stops at its header and ``_need`` says how many bytes to wait for.
        """
        argv = self._argv
        left = self._args_left
        try:
            while left and pos < end:
                cr = buf.find(b"\r", pos)
                if cr < 0 or cr + 1 >= end:
                    if end - pos > INLINE_MAX_SIZE:
                        raise ProtocolError("too big bulk count string")
                    if buf[pos] != 0x24:   # '$'
                        raise ProtocolError("expected '$', got '%s'" % chr(buf[pos]))
                    break
                if buf[pos] != 0x24:
                    raise ProtocolError("expected '$', got '%s'" % chr(buf[pos]))
                length = strict_int(bytes(buf[pos + 1:cr]))
                if length is None or length < 0 or length > self.max_bulk_len:
                    raise ProtocolError("invalid bulk length")
                if not self.authenticated and length > UNAUTH_MAX_BULK:
                    raise ProtocolError("unauthenticated bulk length")
                value = cr + 2
                if value + length + 2 > end:
                    self._need = value + length + 2   # skip re-parsing until the value is in
                    break
                argv.append(bytes(buf[value:value + length]))
                pos = value + length + 2
                left -= 1
        finally:
            self._args_left = left
        return pos


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline command like Valkey's ``sdssplitargs``; ``None`` on bad quoting."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i]
                if (c == 0x5C and i + 3 < n and line[i + 1] == ord("x")
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    cur += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n or line[i] in b" \t\n\r\v\f":
                    break
                c = line[i]
                if c == 0x22:
                    in_dq = True
                elif c == 0x27:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))
