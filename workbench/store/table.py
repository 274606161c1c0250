"""The command table: one entry per command, consulted by every layer.

As in Valkey, a command is described by data, not by special cases: its arity (``n``
means exactly ``n`` arguments including the name, ``-n`` means at least ``n``), its
flags and the positions of its keys. The server decides with these facts alone:

* ``write``     -- may change the keyspace: refused on a read-only replica
  (``READONLY``), refused when too few good replicas (``NOREPLICAS``), propagated to the
  AOF and replicas when it changed something, and (in the durable modes) its reply is
  held until its replication offset is durable;
* ``readonly``  -- reads keys: its reply is held while one of its keys is uncommitted;
* ``keyspace``  -- keyspace-informational (``KEYS``, ``SCAN``, ``DBSIZE``, ...): no key
  arguments, but it reveals the whole keyspace, so it is held while *anything* is
  uncommitted;
* ``server``    -- executed by the server layer (connection state, replication,
  configuration), not by the pure keyspace;
* ``noauth``    -- allowed before ``AUTH``; ``stale`` -- allowed on a replica whose link
  is down; ``loading`` -- allowed while loading; ``no_multi`` -- refused inside MULTI;
  ``pubsub`` -- allowed in RESP2 subscribe mode; ``fast``, ``admin``, ``denyoom`` --
  informational, reported by ``COMMAND INFO``.

Key positions follow Valkey's legacy (first, last, step) triple: ``last = -1`` means
"through the last argument". A command whose keys move (``ZUNION numkeys k1 k2 WEIGHTS
..``, ``EVAL script numkeys ..``, ``SORT .. STORE dst``) is flagged ``movablekeys`` and
also names a ``find_keys(argv) -> list`` that picks them out exactly; the triple stays
the over-approximation ``COMMAND INFO`` reports. Handlers for keyspace commands register themselves with
:func:`command`; server commands register with :func:`server_command` and no handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    arity: int
    flags: frozenset
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    handler: Callable | None = field(default=None, compare=False)
    find_keys: Callable | None = field(default=None, compare=False)
    # bool views of the flags, read on every command:
    is_write: bool = False
    is_readonly: bool = False
    is_keyspace: bool = False
    is_server: bool = False

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def keys(self, argv) -> list:
        """The key arguments of ``argv``: by ``find_keys`` for movable keys, else by the
        (first, last, step) triple."""
        if self.find_keys is not None:
            try:
                return self.find_keys(argv)
            except (IndexError, ValueError):     # malformed: the handler will refuse it
                return []
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(argv[self.first_key:last + 1:self.step])


COMMANDS: dict[bytes, CommandSpec] = {}


def _register(name, arity, flags, first, last, step, group, summary, since, handler,
              find_keys=None):
    flagset = frozenset(flags.split())
    spec = CommandSpec(
        name=name, arity=arity, flags=flagset, first_key=first, last_key=last, step=step,
        group=group, summary=summary, since=since, handler=handler, find_keys=find_keys,
        is_write="write" in flagset, is_readonly="readonly" in flagset,
        is_keyspace="keyspace" in flagset, is_server="server" in flagset)
    COMMANDS[name.lower().encode()] = spec
    return spec


def command(name: str, arity: int, flags: str, first: int = 0, last: int = 0, step: int = 0,
            *, group: str = "generic", summary: str = "", since: str = "1.0.0",
            find_keys: Callable | None = None):
    """Decorator registering a keyspace command handler ``f(ctx, argv) -> reply``."""
    def wrap(f):
        _register(name, arity, flags, first, last, step, group,
                  summary or (f.__doc__ or "").strip().split("\n")[0], since, f, find_keys)
        return f
    return wrap


def server_command(name: str, arity: int, flags: str, first: int = 0, last: int = 0,
                   step: int = 0, *, group: str = "server", summary: str = "",
                   since: str = "1.0.0", find_keys: Callable | None = None) -> CommandSpec:
    """Register a command the server layer executes itself (no keyspace handler)."""
    return _register(name, arity, flags + " server", first, last, step, group, summary, since,
                     None, find_keys)


_BY_SPELLING: dict[bytes, CommandSpec] = {}


def lookup(name: bytes) -> CommandSpec | None:
    """The command named ``name`` in any letter case (spellings seen are remembered)."""
    spec = _BY_SPELLING.get(name)
    if spec is None:
        spec = COMMANDS.get(name.lower())
        if spec is not None and len(_BY_SPELLING) < 4096:
            _BY_SPELLING[name] = spec
    return spec
