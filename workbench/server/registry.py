"""Server commands: registered in the command table, executed with the node at hand.

A server command's handler is ``f(server, conn, argv) -> reply``; it sees the live node
and the client's connection, which the pure keyspace never does.
"""

from __future__ import annotations

from typing import Callable

from ..store.table import server_command

SERVER_HANDLERS: dict[str, Callable] = {}


def handles(name: str, arity: int, flags: str = "", first: int = 0, last: int = 0,
            step: int = 0, *, group: str = "server", summary: str = "", since: str = "1.0.0",
            find_keys=None):
    def wrap(f):
        spec = server_command(name, arity, flags, first, last, step, group=group,
                              summary=summary or (f.__doc__ or "").strip().split("\n")[0],
                              since=since, find_keys=find_keys)
        SERVER_HANDLERS[spec.name] = f
        return f
    return wrap
