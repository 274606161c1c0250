"""The replication backlog: the tail of the replication stream, kept for partial resyncs.

Offsets count bytes of the stream since the replication history (``replid``) began.
``offset`` is the total so far (Valkey's ``master_repl_offset``); the backlog keeps the
last ``size`` bytes, so a replica that reconnects wanting byte ``first_offset`` or later
can continue (``+CONTINUE``) instead of copying the whole dataset again.

It is a ring buffer allocated once, as in Valkey: appending copies bytes into place and
allocates nothing, so a busy primary does not churn memory. Pure: no I/O.
"""

from __future__ import annotations


class Backlog:
    __slots__ = ("size", "offset", "histlen", "_ring")

    def __init__(self, size: int, offset: int = 0):
        self.size = size
        self.offset = offset
        self.histlen = 0
        self._ring = bytearray(size)

    @property
    def first_offset(self) -> int:
        """Offset of the first byte held (1-based, as in Valkey's INFO)."""
        return self.offset - self.histlen + 1

    def append(self, data: bytes) -> None:
        n = len(data)
        size = self.size
        if n >= size:
            self._ring[:] = data[n - size:]
            self.offset += n
            self.histlen = size
            self._rotate_to(self.offset)
            return
        pos = self.offset % size
        end = pos + n
        if end <= size:
            self._ring[pos:end] = data
        else:
            view = memoryview(data)
            self._ring[pos:] = view[:size - pos]
            self._ring[:end - size] = view[size - pos:]
        self.offset += n
        if self.histlen < size:            # once full, the ring stays full
            self.histlen = min(self.histlen + n, size)

    def _rotate_to(self, offset: int) -> None:
        """After a whole-ring overwrite the ring starts at 0; place it as ``offset`` expects."""
        shift = offset % self.size
        if shift:
            self._ring[:] = self._ring[-shift:] + self._ring[:-shift]

    def can_continue_from(self, wanted: int) -> bool:
        """Can a replica that wants bytes from ``wanted`` on be served from here?"""
        return self.first_offset <= wanted <= self.offset + 1

    def since(self, wanted: int) -> bytes:
        """The held bytes from offset ``wanted`` (1-based) through ``offset``."""
        count = self.offset + 1 - wanted
        if count <= 0:
            return b""
        start = (wanted - 1) % self.size
        end = start + count
        if end <= self.size:
            return bytes(self._ring[start:end])
        return bytes(self._ring[start:]) + bytes(self._ring[:end - self.size])

    def reset(self, offset: int) -> None:
        self.histlen = 0
        self.offset = offset
