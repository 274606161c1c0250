"""The RESP wire protocol, sans I/O: bytes in, commands out; replies in, bytes out."""

from ._replies import (NULL_ARRAY, OK, PONG, QUEUED, Double, DoubleText, Map, Pairs, Push,
                       ReplyError, SetReply, Simple, Verbatim, encode, encode_command)
from ._reply_reader import NEED_MORE, ReplyReader
from ._requests import (DEFAULT_MAX_BULK_LEN, DEFAULT_QUERY_BUFFER_LIMIT, ProtocolError,
                        RequestParser, split_args, strict_int)

__all__ = [
    "NULL_ARRAY", "OK", "PONG", "QUEUED", "Double", "DoubleText", "Map", "Pairs", "Push",
    "ReplyError", "SetReply", "Simple", "Verbatim", "encode", "encode_command", "NEED_MORE",
    "ReplyReader",
    "DEFAULT_MAX_BULK_LEN", "DEFAULT_QUERY_BUFFER_LIMIT", "ProtocolError", "RequestParser",
    "split_args", "strict_int",
]
