"""Lua scripts: EVAL, EVALSHA, their _RO forms and SCRIPT, and the command path a
script's ``redis.call`` takes.

A script is one atomic unit: it runs on the node's event loop and nothing else runs
meanwhile. Its commands go through :func:`script_call` -- the checks Valkey makes for a
script (unknown command, arity, ``noscript``, writes in a read-only script, a node that
refuses writes) and then the node's own ``run_keyspace``, with the node in its
"transaction" state (``server._in_exec``): writes are not propagated one by one but
collected, and when the script ends they are propagated the way EXEC propagates a
transaction -- one command as it is, several wrapped in ``MULTI``/``EXEC`` -- so the AOF,
the replicas and the Raft log replay the script's *effects* deterministically (a script
that read ``TIME`` or ran ``SPOP`` replays as the values it wrote). The EVAL itself is
never propagated, as in Valkey 7+.

The commit gate sees a script as it sees a transaction: a script that wrote has its
reply held until its last write is durable; a script that only read is held while a
key it read is uncommitted.
"""

from __future__ import annotations

import hashlib

from ..durability import NOT_HELD
from ..resp import OK, ReplyError
from ..store import lookup
from ..store.values import parse_int
from .commands_conn import propagate_transaction
from .connection import Blocked
from .persistence import StreamClient
from .registry import SERVER_HANDLERS, handles
from .scripting_lua import LuaEngine, lua_argument

# Commands Valkey flags ``noscript`` that this node's table registers without it.
NOT_FROM_SCRIPTS = frozenset({
    "DEBUG", "QUIT", "AUTH", "HELLO", "RESET", "MULTI", "DISCARD", "EXEC", "WATCH", "UNWATCH",
    "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE",
    "CLIENT", "CONFIG", "MONITOR", "SHUTDOWN", "SYNC", "PSYNC", "REPLCONF", "FAILOVER",
    "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"})
SHEBANG_FLAGS = frozenset({"no-writes", "allow-oom", "allow-stale", "no-cluster",
                           "allow-cross-slot-keys"})
NOTBUSY = ReplyError("NOTBUSY No scripts in execution right now.")
NOSCRIPT = ReplyError("NOSCRIPT No matching script. Please use EVAL.")


class Script:
    """A compiled script of the cache: its Lua function and its shebang flags
    (``legacy``: no shebang, so writes are checked command by command)."""

    __slots__ = ("body", "fn", "flags", "legacy")

    def __init__(self, body, fn, flags, legacy):
        self.body, self.fn, self.flags, self.legacy = body, fn, flags, legacy


class Scripting:
    """One node's scripting state: the Lua engine, the script cache and the function
    libraries (see functions.py). Lives as long as the NodeServer: a restart empties the
    script cache (as in Valkey) and reloads the libraries from the AOF."""

    def __init__(self, server):
        self.server = server
        self.engine = LuaEngine(server.log, lambda: busy_reply_threshold(server))
        self.scripts: dict[bytes, Script] = {}
        self.libraries: dict = {}            # name -> functions.Library
        self.functions: dict = {}            # function name -> functions.Function

    def compile_script(self, body: bytes):
        """The cached Script for ``body`` (compiling it once), or a ReplyError."""
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is not None:
            return sha, script
        flags, legacy, source = frozenset(), True, body
        if body.startswith(b"#!"):
            parsed = parse_shebang(body)
            if isinstance(parsed, ReplyError):
                return sha, parsed
            flags, legacy = parsed, False
            source = b"--" + body            # keep the line numbers, drop the shebang
        fn = self.engine.compile(source, b"@user_script")
        if isinstance(fn, str):
            return sha, ReplyError(f"ERR Error compiling script (new function): {fn}")
        script = self.scripts[sha] = Script(body, fn, flags, legacy)
        return sha, script


def scripting(server) -> Scripting:
    """The node's scripting state, made on first use."""
    state = server.__dict__.get("scripting")
    if state is None:
        state = server.__dict__["scripting"] = Scripting(server)
    return state


def busy_reply_threshold(server) -> int:
    return server.config["busy-reply-threshold"] or 10**12      # 0: no limit


def parse_shebang(body: bytes):
    """The flags of a ``#!lua flags=a,b`` first line, or Valkey's error."""
    end = body.find(b"\n")
    if end < 0:
        return ReplyError("ERR Invalid script shebang")
    parts = body[:end].decode(errors="replace").split(" ")
    if parts[0] != "#!lua":
        return ReplyError(f"ERR Unexpected engine in script shebang: {parts[0]}")
    flags = set()
    for part in parts[1:]:
        if not part:
            continue
        if not part.startswith("flags="):
            return ReplyError(f"ERR Unknown lua shebang option: {part}")
        for flag in part[len("flags="):].split(","):
            if flag and flag not in SHEBANG_FLAGS:
                return ReplyError(f"ERR Unexpected flag in script shebang: {flag}")
            if flag:
                flags.add(flag)
    return frozenset(flags)


def script_keys(argv) -> list:
    """EVAL script numkeys key [key ...] arg [arg ...]: the keys (for the commit gate
    and COMMAND GETKEYS)."""
    numkeys = parse_int(argv[2])
    if numkeys is None or not 0 <= numkeys <= len(argv) - 3:
        raise ValueError("bad numkeys")
    return list(argv[3:3 + numkeys])


def split_keys(argv, bad_number: str = "ERR value is not an integer or out of range"):
    """(keys, args) of ``NAME x numkeys ...``, or Valkey's error about numkeys."""
    numkeys = parse_int(argv[2])
    if numkeys is None:
        return ReplyError(bad_number)
    if numkeys > len(argv) - 3:
        return ReplyError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        return ReplyError("ERR Number of keys can't be negative")
    return list(argv[3:3 + numkeys]), list(argv[3 + numkeys:])


class ScriptClient(StreamClient):
    """The pseudo-client a script's commands run as: the caller's database (a SELECT in
    the script changes only the script's), never a primary link."""

    def __init__(self, caller):
        super().__init__()
        self.db = caller.db
        self.id = caller.id if hasattr(caller, "id") else 0
        self.is_primary_link = False
        self.readonly = getattr(caller, "readonly", False)
        self.last_command = b"eval"
        self.caller = caller


class ScriptRun:
    """One script or function running: the checks of its ``redis.call`` and what its
    commands left behind (the offset its reply waits for)."""

    def __init__(self, server, conn, read_only: bool, now_ms: int):
        self.server = server
        self.client = ScriptClient(conn)
        self.read_only = read_only
        self.now_ms = now_ms
        self.hold = NOT_HELD

    def __call__(self, args) -> object:
        """``redis.call(...)``: the reply, or a ReplyError (raised by the Lua side)."""
        if not args:
            return ReplyError("ERR Please specify at least one argument for this redis lib call")
        argv = []
        for value in args:
            arg = lua_argument(value)
            if arg is None:
                return ReplyError("ERR Lua redis lib command arguments must be strings or integers")
            argv.append(arg)
        return script_call(self, argv)


def script_call(run: ScriptRun, argv: list):
    server, client = run.server, run.client
    spec = lookup(argv[0])
    if spec is None:
        return ReplyError("ERR Unknown Redis command called from script")
    if not spec.arity_ok(len(argv)):
        return ReplyError("ERR Wrong number of args calling Redis command from script")
    if "noscript" in spec.flags or spec.name in NOT_FROM_SCRIPTS:
        return ReplyError("ERR This Redis command is not allowed from script")
    if spec.is_write:
        if run.read_only:
            return ReplyError("ERR Write commands are not allowed from read-only scripts.")
        refusal = server.write_refusal()
        if refusal is not None:                # READONLY, NOREPLICAS, MISCONF, not the leader
            return refusal
    elif server.raft is not None and not server.raft.serving:
        refused = server.raft.admit_read(client.caller, argv)   # a follower: NOTLEADER
        if isinstance(refused, ReplyError):
            return refused
    client.last_command = argv[0]
    if spec.is_server:
        reply = SERVER_HANDLERS[spec.name](server, client, argv)
    else:
        reply = server.run_keyspace(client, spec, argv, run.now_ms)
    if client.hold_until > run.hold:
        run.hold = client.hold_until
    client.hold_until = NOT_HELD
    if type(reply) is Blocked:                 # cannot wait inside a script
        reply.future.cancel()
        return None
    return reply


def run_unit(server, conn, call, read_only: bool):
    """Run ``call(run) -> reply`` (a script or a function) as one atomic unit; then
    propagate its effects and set what its reply waits for."""
    import time
    run = ScriptRun(server, conn, read_only, int(time.time() * 1000))
    outer = server._in_exec                    # inside EXEC: the transaction propagates it all
    collected = outer if outer is not None else []
    server._in_exec = collected
    try:
        reply = call(run)
    finally:
        server._in_exec = outer
    hold = run.hold
    if outer is None and collected:
        hold = max(hold, propagate_transaction(server, conn, collected))
    if server.gate is not None and hold > server.gate.committed_offset:
        conn.hold_until = hold
    return reply


def raft_barrier(server, conn, argv):
    """On a serving Raft leader a script may read: like EXEC, it runs once a quorum
    round confirms the leadership (None: run now; else the reply to give)."""
    if server.raft is None or conn.is_primary_link or not server.raft.serving:
        return None
    admitted = server.raft.admit_read(conn, argv)
    if admitted is None:
        return None
    return server.reject(conn, admitted) if isinstance(admitted, ReplyError) else Blocked(admitted)


def evaluate(server, conn, argv, script: Script, sha: bytes, read_only_command: bool):
    parts = split_keys(argv)
    if isinstance(parts, ReplyError):
        return parts
    if read_only_command and not script.legacy and "no-writes" not in script.flags:
        return ReplyError("ERR Can not execute a script with write flag using *_ro command.")
    read_only = read_only_command or "no-writes" in script.flags
    if not script.legacy and not read_only and not conn.is_primary_link:
        refusal = server.write_refusal()       # a script declared as writing: refused up front
        if refusal is not None:
            return refusal
    waiting = raft_barrier(server, conn, argv)
    if waiting is not None:
        return waiting
    keys, args = parts
    engine = scripting(server).engine
    return run_unit(server, conn, lambda run: engine.run(script.fn, keys, args, run,
                                                         sha.decode()), read_only)


# Valkey 8's flags of EVAL, EVALSHA, FCALL; redis-server 7.0 has no may_replicate on them.
SCRIPT_FLAGS = "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys"


@handles("EVAL", -3, SCRIPT_FLAGS, group="scripting", since="2.6.0", find_keys=script_keys)
def eval_(server, conn, argv):
    """Run a Lua script."""
    return _eval(server, conn, argv, read_only=False)


@handles("EVAL_RO", -3, "readonly " + SCRIPT_FLAGS.replace(" may_replicate", ""),
         group="scripting", since="7.0.0", find_keys=script_keys)
def eval_ro(server, conn, argv):
    """Run a read-only Lua script."""
    return _eval(server, conn, argv, read_only=True)


def _eval(server, conn, argv, read_only):
    parts = split_keys(argv)                   # numkeys is checked before the script
    if isinstance(parts, ReplyError):
        return parts
    sha, script = scripting(server).compile_script(argv[1])
    if isinstance(script, ReplyError):
        return script
    return evaluate(server, conn, argv, script, sha, read_only)


@handles("EVALSHA", -3, SCRIPT_FLAGS, group="scripting", since="2.6.0", find_keys=script_keys)
def evalsha(server, conn, argv):
    """Run a cached Lua script by its SHA1 digest."""
    return _evalsha(server, conn, argv, read_only=False)


@handles("EVALSHA_RO", -3, "readonly " + SCRIPT_FLAGS.replace(" may_replicate", ""),
         group="scripting", since="7.0.0", find_keys=script_keys)
def evalsha_ro(server, conn, argv):
    """Run a cached read-only Lua script by its SHA1 digest."""
    return _evalsha(server, conn, argv, read_only=True)


def _evalsha(server, conn, argv, read_only):
    parts = split_keys(argv)
    if isinstance(parts, ReplyError):
        return parts
    sha = argv[1].lower()
    script = scripting(server).scripts.get(sha) if len(sha) == 40 else None
    if script is None:
        return NOSCRIPT
    return evaluate(server, conn, argv, script, sha, read_only)


_SCRIPT_ARITY = {b"LOAD": 3, b"EXISTS": -3, b"FLUSH": -2, b"KILL": 2, b"HELP": 2, b"DEBUG": 3}

SCRIPT_HELP = [
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DEBUG (YES|SYNC|NO)", b"    Set the debug mode for subsequent scripts executed.",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]", b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL", b"    Kill the currently executing Lua script.",
    b"LOAD <script>", b"    Load a script into the scripts cache without executing it.",
    b"HELP", b"    Prints this help."]


def subcommand_arity_error(command: str, sub: bytes):
    return ReplyError(f"ERR wrong number of arguments for '{command}|"
                      f"{sub.decode(errors='replace').lower()}' command")


@handles("SCRIPT", -2, "noscript", group="scripting", since="2.6.0")
def script(server, conn, argv):
    """Manage the script cache."""
    sub = argv[1].upper()
    arity = _SCRIPT_ARITY.get(sub)
    if arity is None:
        return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                          "Try SCRIPT HELP.")
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        return subcommand_arity_error("script", sub)
    state = scripting(server)
    if sub == b"LOAD":
        sha, compiled = state.compile_script(argv[2])
        return compiled if isinstance(compiled, ReplyError) else sha
    if sub == b"EXISTS":
        return [int(sha.lower() in state.scripts) for sha in argv[2:]]
    if sub == b"FLUSH":
        if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() not in (b"SYNC", b"ASYNC")):
            return ReplyError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
        state.scripts.clear()
        return OK
    if sub == b"KILL":
        return NOTBUSY          # a script never runs while a command is being read
    if sub == b"DEBUG":
        mode = argv[2].upper()
        if mode == b"NO":
            return OK
        if mode in (b"YES", b"SYNC"):
            return ReplyError("ERR SCRIPT DEBUG (the Lua debugger) is not available in the "
                              "workbench")
        return ReplyError("ERR Use SCRIPT DEBUG YES/SYNC/NO")
    return SCRIPT_HELP
