"""A node's whole dataset -- its function libraries and its keyspace -- as commands.

Whatever copies or replaces a dataset wholesale goes through here, so none of them forgets
the libraries (Valkey's RDB carries both): a replica's full sync, an AOF rewrite
(``BGREWRITEAOF``, ``DEBUG RELOAD``, ``CONFIG SET appendonly yes``) and a Raft snapshot.
The bytes are ``FUNCTION LOAD REPLACE <code>`` for each library, then the keyspace as
:mod:`workbench.store.snapshot` writes it; replaying them -- from an AOF at start, or
through :func:`load` -- rebuilds both.
"""

from __future__ import annotations

from ..resp import encode_command
from ..store import snapshot
from .functions import load_library
from .scripting import scripting


def library_commands(server) -> list:
    return [[b"FUNCTION", b"LOAD", b"REPLACE", library.code]
            for library in scripting(server).libraries.values()]


def dump(server, now_ms: int) -> bytes:
    libraries = b"".join(encode_command(c) for c in library_commands(server))
    return libraries + snapshot.dump(server.keyspace, now_ms)


def load(server, payload: bytes, now_ms: int) -> None:
    """Replace the libraries and the keyspace with ``payload``'s (the keyspace must be
    empty, as after a flush)."""
    state = scripting(server)
    state.libraries.clear()
    state.functions.clear()

    def run_server_command(argv):
        if argv[0].upper() != b"FUNCTION" or argv[1].upper() != b"LOAD":
            raise ValueError(f"a dataset holds no {argv[0]!r} command")
        loaded = load_library(server, argv[-1], replace=True)
        if not isinstance(loaded, bytes):
            raise ValueError(f"a library in the dataset does not load: {loaded.text}")

    snapshot.load(server.keyspace, payload, now_ms, server_command=run_server_command)
