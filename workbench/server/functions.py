"""Functions: FUNCTION LOAD|LIST|DELETE|FLUSH|STATS|DUMP|RESTORE|KILL|HELP, FCALL, FCALL_RO.

A library is Lua code whose first line names it (``#!lua name=mylib``) and whose body
registers functions with ``redis.register_function``. Unlike the script cache,
libraries are data: FUNCTION LOAD, DELETE, FLUSH and RESTORE are writes -- refused where
writes are refused, propagated to the AOF and the replicas (and the Raft log) as they
were received -- so a restarted node or a replica has the same libraries. (They are not
part of a keyspace snapshot yet: a replica's full sync, or an AOF rewrite, does not
carry them, where Valkey's RDB does.)
"""

from __future__ import annotations

import struct

from ..resp import OK, Map, ReplyError, SetReply
from ..store.glob import match_tokens, tokenize
from .registry import handles
from .scripting import (NOTBUSY, SCRIPT_FLAGS, raft_barrier, run_unit, scripting,
                        script_keys, split_keys, subcommand_arity_error)

_NAME_ERROR = ("ERR Library names can only contain letters, numbers, or underscores(_) and "
               "must be at least one character long")


class Function:
    __slots__ = ("name", "callback", "flags", "description", "library")

    def __init__(self, name, callback, flags, description, library):
        self.name, self.callback, self.flags = name, callback, flags
        self.description, self.library = description, library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes):
        self.name, self.code, self.functions = name, code, {}


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122
                              for c in name)


def library_name(code: bytes):
    """The name a library's first line gives, or Valkey's error."""
    if not code.startswith(b"#!"):
        return ReplyError("ERR Missing library metadata")
    end = code.find(b"\n")
    parts = (code if end < 0 else code[:end]).split(b" ")
    engine, name = parts[0][2:], None
    for part in parts[1:]:
        if part.startswith(b"name="):
            name = part[5:]
        else:
            return ReplyError(f"ERR Invalid metadata value given: {part.decode(errors='replace')}")
    if name is None:
        return ReplyError("ERR Library name was not given")
    if engine.upper() != b"LUA":
        return ReplyError(f"ERR Engine '{engine.decode(errors='replace')}' not found")
    if not _valid_name(name):
        return ReplyError(_NAME_ERROR)
    return name


def load_library(server, code: bytes, replace: bool):
    """Compile and register a library; its name, or the error (nothing changes then)."""
    state = scripting(server)
    name = library_name(code)
    if isinstance(name, ReplyError):
        return name
    old = state.libraries.get(name)
    if old is not None and not replace:
        return ReplyError(f"ERR Library '{name.decode(errors='replace')}' already exists")
    fn = state.engine.compile(b"--" + code, b"@user_function")     # keep the line numbers
    if isinstance(fn, str):
        return ReplyError(f"ERR Error compiling function: {fn}")
    found = state.engine.load_library(fn)
    if isinstance(found, str):
        return ReplyError(f"ERR Error registering functions: {found}")
    if not found:
        return ReplyError("ERR No functions registered")
    library = Library(name, code)
    for fname, callback, flags, description in found:
        other = state.functions.get(fname)
        if other is not None and other.library is not old:
            return ReplyError(f"ERR Function {fname.decode(errors='replace')} already exists")
        library.functions[fname] = Function(fname, callback, flags, description, library)
    if old is not None:
        _drop(state, old)
    state.libraries[name] = library
    state.functions.update(library.functions)
    return name


def _drop(state, library) -> None:
    del state.libraries[library.name]
    for fname in library.functions:
        state.functions.pop(fname, None)


def _write(server, conn, argv):
    """FUNCTION's writes: refused where writes are, propagated like a keyspace write
    (inside EXEC with the transaction). None: go ahead, after :func:`_propagate`."""
    if conn.is_primary_link:
        return None
    return server.write_refusal()


def _propagate(server, conn, argv) -> None:
    if conn.is_primary_link and server.link is None and (
            server.raft is None or not server.raft.applying):
        return                               # replaying this node's own AOF at start
    if server._in_exec is not None:
        server._in_exec.append((conn.db, [argv], [], (), [], []))
        return
    server.propagate([argv], conn.db)
    conn.woff = server.repl.offset
    gate = server.gate
    if gate is not None and not conn.is_primary_link and conn.woff > gate.committed_offset:
        conn.hold_until = conn.woff          # acknowledged once the library is durable


_FUNCTION_ARITY = {b"LOAD": -3, b"LIST": -2, b"DELETE": 3, b"FLUSH": -2, b"STATS": 2,
                   b"DUMP": 2, b"RESTORE": -3, b"KILL": 2, b"HELP": 2}


@handles("FUNCTION", -2, "noscript", group="scripting", since="7.0.0")
def function(server, conn, argv):
    """Manage function libraries."""
    sub = argv[1].upper()
    arity = _FUNCTION_ARITY.get(sub)
    if arity is None:
        return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                          "Try FUNCTION HELP.")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        return subcommand_arity_error("function", sub)
    state = scripting(server)
    if sub in (b"LOAD", b"DELETE", b"FLUSH", b"RESTORE"):
        refusal = _write(server, conn, argv)
        if refusal is not None:
            return refusal
        reply = _FUNCTION_WRITES[sub](server, state, argv)
        if not isinstance(reply, ReplyError):
            _propagate(server, conn, argv)
        return reply
    if sub == b"LIST":
        return _list(state, argv)
    if sub == b"STATS":
        return Map({b"running_script": None, b"engines": Map({b"LUA": Map({
            b"libraries_count": len(state.libraries),
            b"functions_count": len(state.functions)})})})
    if sub == b"DUMP":
        return dump_libraries(state)
    if sub == b"KILL":
        return NOTBUSY
    return FUNCTION_HELP


def _load(server, state, argv):
    replace = False
    for option in argv[2:-1]:
        if option.upper() != b"REPLACE":
            return ReplyError(f"ERR Unknown option given: {option.decode(errors='replace')}")
        replace = True
    return load_library(server, argv[-1], replace)


def _delete(server, state, argv):
    library = state.libraries.get(argv[2])
    if library is None:
        return ReplyError("ERR Library not found")
    _drop(state, library)
    return OK


def _flush(server, state, argv):
    if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() not in (b"SYNC", b"ASYNC")):
        return ReplyError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    state.libraries.clear()
    state.functions.clear()
    return OK


def _list(state, argv):
    pattern, with_code, i = None, False, 2
    while i < len(argv):
        option = argv[i].upper()
        if option == b"WITHCODE" and not with_code:
            with_code = True
            i += 1
        elif option == b"LIBRARYNAME" and pattern is None:
            if i + 1 >= len(argv):
                return ReplyError("ERR library name argument was not given")
            pattern = tokenize(argv[i + 1])
            i += 2
        else:
            return ReplyError(f"ERR Unknown argument {argv[i].decode(errors='replace')}")
    out = []
    for library in state.libraries.values():
        if pattern is not None and not match_tokens(pattern, library.name):
            continue
        entry = Map({b"library_name": library.name, b"engine": b"LUA", b"functions": [
            Map({b"name": f.name, b"description": f.description,
                 b"flags": SetReply(f.flags)}) for f in library.functions.values()]})
        if with_code:
            entry[b"library_code"] = library.code
        out.append(entry)
    return out


# FUNCTION DUMP's payload: b"WBFN" 1, then each library's code (4-byte length, code).
# Not Valkey's RDB-based format: it round-trips within the workbench only.
_DUMP_MAGIC = b"WBFN\x01"


def dump_libraries(state) -> bytes:
    return _DUMP_MAGIC + b"".join(struct.pack(">I", len(lib.code)) + lib.code
                                  for lib in state.libraries.values())


def _restore(server, state, argv):
    payload = argv[2]
    policy = argv[3].upper() if len(argv) > 3 else b"APPEND"
    if len(argv) > 4 or policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
        return ReplyError("ERR Wrong restore policy given, value should be either FLUSH, "
                          "APPEND or REPLACE.")
    codes, i = [], len(_DUMP_MAGIC)
    if not payload.startswith(_DUMP_MAGIC):
        return ReplyError("ERR DUMP payload version or checksum are wrong")
    while i < len(payload):
        if i + 4 > len(payload):
            return ReplyError("ERR DUMP payload version or checksum are wrong")
        (size,) = struct.unpack_from(">I", payload, i)
        codes.append(payload[i + 4:i + 4 + size])
        i += 4 + size
    saved = (dict(state.libraries), dict(state.functions))
    if policy == b"FLUSH":
        state.libraries.clear()
        state.functions.clear()
    for code in codes:
        name = library_name(code)
        if policy == b"APPEND" and not isinstance(name, ReplyError) and name in state.libraries:
            error = ReplyError(f"ERR Library {name.decode(errors='replace')} already exists")
        else:
            error = load_library(server, code, replace=policy != b"APPEND")
        if isinstance(error, ReplyError):
            state.libraries, state.functions = saved   # all or nothing
            return error
    return OK


_FUNCTION_WRITES = {b"LOAD": _load, b"DELETE": _delete, b"FLUSH": _flush, b"RESTORE": _restore}

FUNCTION_HELP = [
    b"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"LOAD [REPLACE] <FUNCTION CODE>",
    b"    Create a new library with the given library name and code.",
    b"DELETE <LIBRARY NAME>", b"    Delete the given library.",
    b"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    b"    Return general information on all the libraries:", b"    * Library name",
    b"    * The engine used to run the Library", b"    * Library description",
    b"    * Functions list", b"    * Library code (if WITHCODE is given)",
    b"    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    b"STATS", b"    Return information about the current function running:",
    b"    * Function name", b"    * Command used to run the function",
    b"    * Duration in MS that the function is running",
    b"    If no function is running, return nil",
    b"    In addition, returns a list of available engines.",
    b"KILL", b"    Kill the current running function.",
    b"FLUSH [ASYNC|SYNC]", b"    Delete all the libraries.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the libraries.",
    b"    * SYNC: Synchronously flush the libraries.",
    b"DUMP", b"    Return a serialized payload representing the current libraries, can be "
    b"restored using FUNCTION RESTORE command",
    b"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    b"    Restore the libraries represented by the given payload, it is possible to give a "
    b"restore policy to",
    b"    control how to handle existing libraries (default APPEND):",
    b"    * FLUSH: delete all existing libraries.",
    b"    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    b"    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    b"replace the old",
    b"      libraries with the new libraries (notice that even on this option there is a "
    b"chance of failure",
    b"      in case of functions name collision with another library).",
    b"HELP", b"    Prints this help."]


# -- FCALL ---------------------------------------------------------------------------------
@handles("FCALL", -3, SCRIPT_FLAGS, group="scripting", since="7.0.0", find_keys=script_keys)
def fcall(server, conn, argv):
    """Invoke a function."""
    return _fcall(server, conn, argv, read_only_command=False)


@handles("FCALL_RO", -3, "readonly " + SCRIPT_FLAGS.replace(" may_replicate", ""),
         group="scripting", since="7.0.0", find_keys=script_keys)
def fcall_ro(server, conn, argv):
    """Invoke a read-only function."""
    return _fcall(server, conn, argv, read_only_command=True)


def _fcall(server, conn, argv, read_only_command):
    state = scripting(server)
    fn = state.functions.get(argv[1])
    if fn is None:
        return ReplyError("ERR Function not found")
    parts = split_keys(argv, "ERR Bad number of keys provided")
    if isinstance(parts, ReplyError):
        return parts
    read_only = b"no-writes" in fn.flags
    if read_only_command and not read_only:
        return ReplyError("ERR Can not execute a script with write flag using *_ro command.")
    if not read_only and not conn.is_primary_link:
        refusal = server.write_refusal()        # a function may write unless it says not
        if refusal is not None:
            return refusal
    waiting = raft_barrier(server, conn, argv)
    if waiting is not None:
        return waiting
    keys, args = parts
    name = fn.name.decode(errors="replace")
    return run_unit(server, conn, lambda run: state.engine.run(
        fn.callback, keys, args, run, name, as_function=True), read_only)
