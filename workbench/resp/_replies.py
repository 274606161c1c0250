"""Writing replies: Python values in, RESP2 or RESP3 bytes out.

Command handlers return plain values and the encoder picks the wire form for the
client's protocol version:

============================  ====================  ============================
value                         RESP3                  RESP2 (Valkey's fallback)
============================  ====================  ============================
``bytes``                     bulk ``$``             bulk ``$``
``int`` / ``bool``            integer ``:``          integer ``:``
``None``                      null ``_``             null bulk ``$-1``
``list`` / ``tuple``          array ``*``            array ``*``
:class:`Simple`               simple ``+``           simple ``+``
:class:`ReplyError`           error ``-``            error ``-``
:class:`Map`                  map ``%``              flat array ``*2n``
:class:`SetReply`             set ``~``              array ``*``
:class:`Double`               double ``,``           bulk string
:class:`Verbatim`             verbatim ``=``         bulk string
:data:`NULL_ARRAY`            null ``_``             null array ``*-1``
:class:`Push`                 push ``>``             array ``*``
:class:`Pairs`                array of ``*2`` pairs  flat array ``*2n``
:class:`DoubleText`           double ``,``           bulk string
============================  ====================  ============================
"""

from __future__ import annotations


class Simple:
    """A status reply such as ``+OK``; its bytes are computed once."""

    __slots__ = ("text", "wire")

    def __init__(self, text: str):
        self.text = text
        self.wire = b"+" + text.encode() + b"\r\n"

    def __repr__(self):
        return f"Simple({self.text!r})"


_CR_LF = "\r\n"
_CR_LF_TO_SPACES = str.maketrans(_CR_LF, "  ")
_CR_LF_TO_SPACES_BYTES = bytes.maketrans(b"\r\n", b"  ")


def error_line(text: bytes) -> bytes:
    """The wire form of an error reply, ``-<text>\\r\\n``, with no CR or LF inside.

    Every error reply is written through here. As Valkey's ``addReplyErrorFormat`` does,
    CR and LF at the ends are dropped and any inside become spaces: a client's bytes
    quoted in an error (``got '\\n'``) must not end the line early and desync the client.
    """
    return b"-" + text.strip(b"\r\n").translate(_CR_LF_TO_SPACES_BYTES) + b"\r\n"


class ReplyError(Exception):
    """An error reply. The text starts with its prefix (``ERR``, ``WRONGTYPE`` ...).

    It is an exception so deep helpers can ``raise`` it; handlers may also return it.
    ``text`` is already cleaned of CR and LF as :func:`error_line` cleans the wire.
    """

    def __init__(self, text: str):
        text = text.strip(_CR_LF).translate(_CR_LF_TO_SPACES)
        super().__init__(text)
        self.text = text
        self.wire = error_line(text.encode("utf-8", "replace"))

    @property
    def prefix(self) -> str:
        return self.text.split(" ", 1)[0]


class Map(dict):
    """A RESP3 map (a flat key/value array in RESP2)."""


class SetReply(list):
    """A RESP3 set (an array in RESP2)."""


class Pairs(list):
    """A list of ``[a, b]`` pairs, e.g. members WITHSCORES: in RESP3 an array of
    2-element arrays, in RESP2 one flat array ``a1 b1 a2 b2 ..`` (as Valkey answers)."""


class Push(list):
    """A RESP3 out-of-band push (pub/sub messages); an array in RESP2."""


class Double(float):
    """A RESP3 double (a bulk string in RESP2)."""


class DoubleText(bytes):
    """A double already spelled (GEOPOS's ``13.36138933897018433``, Valkey's
    ``addReplyHumanLongDouble``): a RESP3 double with exactly this text, a bulk string in
    RESP2."""


class Verbatim(bytes):
    """A RESP3 verbatim text (``=<len>\\r\\ntxt:...``); a bulk string in RESP2."""


class _NullArray:
    __slots__ = ()

    def __repr__(self):
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
OK = Simple("OK")
PONG = Simple("PONG")
QUEUED = Simple("QUEUED")


def _double_text(value: float) -> bytes:
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    if value == int(value) and abs(value) < 1e17:
        return b"%d" % int(value)
    return repr(value).encode()


def encode(value, proto: int = 2) -> bytes:
    """The wire bytes of one reply for a client speaking ``proto`` (2 or 3)."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if t is Simple:
        return value.wire
    if t is int:
        return b":%d\r\n" % value
    if value is None:
        return b"_\r\n" if proto == 3 else b"$-1\r\n"
    if t is list or t is tuple:
        return b"*%d\r\n" % len(value) + b"".join([encode(v, proto) for v in value])
    out = bytearray()
    _encode_into(out, value, proto)
    return bytes(out)


def _encode_into(out: bytearray, value, proto: int) -> None:
    t = type(value)
    if t is bytes:
        out += b"$%d\r\n%s\r\n" % (len(value), value)
    elif t is Simple:
        out += value.wire
    elif t is int:
        out += b":%d\r\n" % value
    elif value is None:
        out += b"_\r\n" if proto == 3 else b"$-1\r\n"
    elif t is bool:
        out += (b"#t\r\n" if value else b"#f\r\n") if proto == 3 else (b":1\r\n" if value else b":0\r\n")
    elif isinstance(value, ReplyError):
        out += value.wire
    elif t is str:
        raw = value.encode()
        out += b"$%d\r\n%s\r\n" % (len(raw), raw)
    elif t is Map or t is dict:
        if proto == 3:
            out += b"%%%d\r\n" % len(value)
        else:
            out += b"*%d\r\n" % (2 * len(value))
        for k, v in value.items():
            _encode_into(out, k, proto)
            _encode_into(out, v, proto)
    elif t is SetReply or t is Push or t is list or t is tuple:
        mark = b"*"
        if proto == 3 and t is SetReply:
            mark = b"~"
        elif proto == 3 and t is Push:
            mark = b">"
        out += mark + b"%d\r\n" % len(value)
        for v in value:
            _encode_into(out, v, proto)
    elif t is Pairs:
        if proto == 3:
            out += b"*%d\r\n" % len(value)
            for pair in value:
                out += b"*2\r\n"
                _encode_into(out, pair[0], proto)
                _encode_into(out, pair[1], proto)
        else:
            out += b"*%d\r\n" % (2 * len(value))
            for pair in value:
                _encode_into(out, pair[0], proto)
                _encode_into(out, pair[1], proto)
    elif t is Double or t is DoubleText:
        text = _double_text(value) if t is Double else value
        out += (b",%s\r\n" % text) if proto == 3 else (b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is Verbatim:
        if proto == 3:
            out += b"=%d\r\ntxt:%s\r\n" % (len(value) + 4, bytes(value))
        else:
            out += b"$%d\r\n%s\r\n" % (len(value), bytes(value))
    elif value is NULL_ARRAY:
        out += b"_\r\n" if proto == 3 else b"*-1\r\n"
    elif t is float:
        text = _double_text(value)
        out += b"$%d\r\n%s\r\n" % (len(text), text)
    else:
        raise TypeError(f"cannot encode {value!r} as a reply")


# "$<len>\r\n" of short arguments, looked up instead of formatted (every write is encoded).
_BULK_HEADERS = [b"$%d\r\n" % n for n in range(1024)]


def encode_command(argv) -> bytes:
    """A command as a multibulk request: the form of the AOF and the replication stream."""
    parts = [b"*%d\r\n" % len(argv)]
    put = parts.append
    for a in argv:
        if type(a) is not bytes:
            a = str(a).encode() if not isinstance(a, (bytes, bytearray)) else bytes(a)
        n = len(a)
        put(_BULK_HEADERS[n] if n < 1024 else b"$%d\r\n" % n)
        put(a)
        put(b"\r\n")
    return b"".join(parts)
