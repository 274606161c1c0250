"""Reading replies, for the workbench's own peers (replica links, failover monitors).

The node talks to other nodes as a client would: it sends commands and reads replies.
:class:`ReplyReader` is incremental like :class:`~workbench.resp.RequestParser`:
``feed`` bytes, then ``get`` values until it answers :data:`NEED_MORE`. A full sync
payload (``$<len>\\r\\n`` followed by raw bytes with no trailing CRLF, as Valkey sends an
RDB) is read with :meth:`get_payload`.
"""

from __future__ import annotations

from ._replies import ReplyError


class _NeedMore:
    __repr__ = lambda self: "NEED_MORE"   # noqa: E731


NEED_MORE = _NeedMore()


class ReplyReader:
    __slots__ = ("_buf", "_pos")

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def take_rest(self) -> bytes:
        """Hand every unread byte to the next stage (e.g. the command stream)."""
        rest = bytes(self._buf[self._pos:])
        self._buf.clear()
        self._pos = 0
        return rest

    def get(self):
        """The next complete reply, or :data:`NEED_MORE`."""
        result = self._read(self._pos)
        if result is NEED_MORE:
            return NEED_MORE
        value, self._pos = result
        return value

    def get_payload(self):
        """A bulk payload without trailing CRLF (a full sync snapshot), or NEED_MORE."""
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return NEED_MORE
        if buf[pos] != 0x24:
            raise ValueError("expected a '$' payload, got %r" % bytes(buf[pos:nl]))
        length = int(buf[pos + 1:nl])
        start = nl + 2
        if len(buf) < start + length:
            return NEED_MORE
        self._pos = start + length
        return bytes(buf[start:start + length])

    def _read(self, pos):
        buf = self._buf
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return NEED_MORE
        kind = buf[pos]
        line = bytes(buf[pos + 1:nl])
        after = nl + 2
        if kind == 0x2B:   # +
            return line.decode(), after
        if kind == 0x2D:   # -
            return ReplyError(line.decode("utf-8", "replace")), after
        if kind == 0x3A:   # :
            return int(line), after
        if kind == 0x24:   # $
            length = int(line)
            if length < 0:
                return None, after
            if len(buf) < after + length + 2:
                return NEED_MORE
            return bytes(buf[after:after + length]), after + length + 2
        if kind in (0x2A, 0x25, 0x7E, 0x3E):   # * % ~ >
            count = int(line)
            if count < 0:
                return None, after
            if kind == 0x25:
                count *= 2
            items = []
            for _ in range(count):
                result = self._read(after)
                if result is NEED_MORE:
                    return NEED_MORE
                item, after = result
                items.append(item)
            if kind == 0x25:
                return dict(zip(items[::2], items[1::2])), after
            return items, after
        if kind == 0x5F:   # _
            return None, after
        if kind == 0x23:   # #
            return line == b"t", after
        if kind == 0x2C:   # ,
            return float(line), after
        raise ValueError("unexpected reply type byte %r" % chr(kind))
