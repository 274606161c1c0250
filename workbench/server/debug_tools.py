"""DEBUG subcommands that test suites use, where they make sense in-process.

``SET-ACTIVE-EXPIRE 0|1`` stops (or restarts) the node's active expiry cycle;
``OBJECT key`` prints Valkey's one-line description of a value; ``RELOAD`` writes the
dataset out and loads it back (with an AOF: rewrites the AOF from the keyspace and
replays it; without: a dump and load of the keyspace in memory); ``CHANGE-REPL-ID``
gives the node a new replication ID; ``DIGEST`` / ``DIGEST-VALUE`` fingerprint the
dataset (equal datasets, equal digests, in any order) so that a primary and its replicas
can be compared.

``RELOAD`` is refused where it cannot be done safely: on a ``raft`` node (its state is
the Raft log's, not the AOF's), while the write-behind log owns the AOF, and while writes
still wait to become durable (a rewrite would make them durable behind the commit
gate's back).
"""

from __future__ import annotations

import hashlib
import time

from ..resp import OK, ReplyError, Simple
from ..store.cmd_dump import serialize
from . import dataset
from .commands_introspection import encoding, idle_seconds, peek

EMPTY_DIGEST = b"0" * 40


def _set_active_expire(server, conn, argv):
    if len(argv) != 3:
        return _arity(argv)
    try:
        server.active_expire = int(argv[2]) != 0
    except ValueError:
        server.active_expire = False          # Valkey's atoi: not a number is 0
    return OK


def _object(server, conn, argv):
    if len(argv) != 3:
        return _arity(argv)
    key = argv[2]
    value = peek(server, conn.db, key)
    if value is None:
        return ReplyError("ERR no such key")
    idle = idle_seconds(server, conn.db, key)
    return Simple(f"Value at:0x{id(value):x} refcount:1 "
                  f"encoding:{encoding(server, conn.db, key, value)} "
                  f"serializedlength:{len(serialize(value)) - 6} "
                  f"lru:{(int(time.time()) - idle) & 0xFFFFFF} lru_seconds_idle:{idle}")


def _change_repl_id(server, conn, argv):
    from ..replication.primary import new_replid
    server.repl.replid = new_replid()
    return OK


def _key_digest(db: int, key: bytes, value, expire) -> bytes:
    h = hashlib.sha1(b"%d\0" % db)
    h.update(b"%d\0" % len(key) + key)
    h.update(_canonical(value))
    if expire is not None:
        h.update(b"!%d" % expire)
    return h.digest()


def _canonical(value) -> bytes:
    """The value's bytes in a fixed order (a set's or a hash's iteration order is not
    its content)."""
    if type(value) is set:
        return b"set" + b"".join(b"%d:" % len(m) + m for m in sorted(value))
    if type(value) is dict:
        return b"hash" + b"".join(b"%d:%s%d:%s" % (len(f), f, len(v), v)
                                  for f, v in sorted(value.items()))
    return serialize(value)


def _digest(server, conn, argv):
    if len(argv) != 2:
        return _arity(argv)
    mixed = bytes(20)
    found = False
    for database in server.keyspace.dbs:
        for key, value in database.data.items():
            if peek(server, database.id, key) is None:
                continue
            found = True
            d = _key_digest(database.id, key, value, database.expires.get(key))
            mixed = bytes(a ^ b for a, b in zip(mixed, d))     # order does not matter
    return mixed.hex().encode() if found else EMPTY_DIGEST


def _digest_value(server, conn, argv):
    out = []
    for key in argv[2:]:
        value = peek(server, conn.db, key)
        out.append(EMPTY_DIGEST if value is None
                   else hashlib.sha1(_canonical(value)).hexdigest().encode())
    return out


def rewrite_refusal(server, what: str) -> ReplyError | None:
    """Why the AOF cannot be rewritten from the keyspace right now, if it cannot."""
    if server.raft is not None:
        return ReplyError(f"ERR {what} is not supported on a raft node: its dataset is "
                          "the Raft log's, which a rewrite would bypass")
    if server.write_behind is not None:
        return ReplyError(f"ERR {what} is not supported while the write-behind log owns "
                          "the AOF (aof-write-behind yes)")
    gate = server.gate
    if gate is not None and gate.committed_offset < server.repl.offset:
        return ReplyError(f"ERR {what} refused: some writes are not durable yet "
                          "(replies are held); retry once they are")
    return None


def rewrite_aof(server) -> ReplyError | None:
    """Replace the AOF with the commands that rebuild the keyspace (atomically: temp
    file, fsync, rename); an error reply if the disk refused."""
    try:
        server.aof.rewrite(dataset.dump(server, int(time.time() * 1000)))
    except OSError as err:
        return ReplyError(f"ERR Error trying to rewrite the AOF: {err}")
    server.aof_db = -1
    server.aof_offset_at_fsync = server.repl.offset
    return None


def _reload(server, conn, argv):
    save = True
    for opt in argv[2:]:
        if opt.upper() == b"NOSAVE":
            save = False
        else:
            return ReplyError("ERR DEBUG RELOAD only supports the NOSAVE option here "
                              "(MERGE and NOFLUSH are not built).")
    refusal = rewrite_refusal(server, "DEBUG RELOAD")
    if refusal is not None:
        return refusal
    if server.aof is None and not save:
        return ReplyError("ERR DEBUG RELOAD NOSAVE needs an AOF to load from")
    if server.aof is not None:
        if save:
            failed = rewrite_aof(server)
            if failed is not None:
                return failed
        else:
            server.aof.flush()                    # what the buffer holds is in the file
        server.keyspace.flush()
        server._load_aof()
    else:
        now_ms = int(time.time() * 1000)
        payload = dataset.dump(server, now_ms)
        server.keyspace.flush()
        dataset.load(server, payload, now_ms)
    server.touch_db(None)                     # WATCHed keys: the values were replaced
    server.last_save = time.time()
    return OK


def _arity(argv):
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{argv[1].decode(errors='replace')}'. Try DEBUG HELP.")


SUBCOMMANDS = {b"SET-ACTIVE-EXPIRE": _set_active_expire, b"OBJECT": _object,
               b"CHANGE-REPL-ID": _change_repl_id, b"RELOAD": _reload,
               b"DIGEST": _digest, b"DIGEST-VALUE": _digest_value}

HELP = [
    b"SET-ACTIVE-EXPIRE <0|1>", b"    Setting it to 0 disables expiring keys in background.",
    b"OBJECT <key>", b"    Show low level info about the `key` and associated value.",
    b"RELOAD [NOSAVE]",
    b"    Save the dataset (rewrite the AOF, if any) and load it back; NOSAVE: load the AOF as it is.",
    b"CHANGE-REPL-ID", b"    Change the replication IDs of the instance.",
    b"DIGEST", b"    Output a hex signature representing the current DB content.",
    b"DIGEST-VALUE <key> [<key> ...]",
    b"    Output a hex signature of the values of all the specified keys."]
