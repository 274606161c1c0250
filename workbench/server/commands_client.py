"""CLIENT: what a client library sends while it sets up (COMMAND: commands_command.py).

``CLIENT`` names, lists, kills, pauses and unblocks connections and controls this
connection's replies (``CLIENT REPLY``). Two things here change how other commands run:

* **CLIENT PAUSE ms [WRITE|ALL]**: while it lasts, a command it covers (ALL: every
  command of a normal client; WRITE: writes, and what may write or replicate -- EVAL,
  EVALSHA, FCALL, PUBLISH, PFCOUNT, an EXEC with a write queued) is *postponed*: the
  client is answered with a :class:`Blocked` reply that runs the command when the pause
  ends, so it waits instead of being refused. Replicas, the replication link and the
  node's own machinery (expiry, fsyncs, the commit gate) keep running.
* **CLIENT REPLY OFF|SKIP**: the connection drops the replies (``silenced``); a dropped
  reply is never held by the commit gate.
"""

from __future__ import annotations

import asyncio
import time

from ..resp import OK, Map, ReplyError, SetReply, Simple, Verbatim
from ..store import lookup
from ..store.values import parse_int
from .connection import Blocked
from .registry import handles

UNBLOCKED = ReplyError("UNBLOCKED client unblocked via CLIENT UNBLOCK")


# -- CLIENT LIST / INFO ------------------------------------------------------------------
def client_line(server, c) -> str:
    now = time.time()
    cmd = c.last_command.decode(errors="replace").lower()
    return (f"id={c.id} addr={c.addr} laddr={c.laddr} fd=-1 name={c.name.decode(errors='replace')} "
            f"age={int(now - c.created)} idle={int(now - c.last_interaction)} flags={c.flags} "
            f"db={c.db} sub={len(c.channels)} psub={len(c.patterns)} ssub=0 "
            f"multi={-1 if c.multi is None else len(c.multi)} watch={len(c.watched)} "
            f"qbuf={c.parser.buffered} cmd={cmd} user=default redir=-1 resp={c.proto} "
            f"lib-name={c.lib_name.decode(errors='replace')} "
            f"lib-ver={c.lib_ver.decode(errors='replace')}")


def client_type(c) -> str:
    if c.replica is not None:
        return "replica"
    if c.is_primary_link:
        return "master"
    if c.channels or c.patterns:
        return "pubsub"
    return "normal"


_TYPES = {b"normal": "normal", b"master": "master", b"replica": "replica", b"slave": "replica",
          b"pubsub": "pubsub"}


def _valid_attribute(value: bytes) -> bool:
    """Valkey's charset for names and library info: printable ASCII, no spaces."""
    return all(33 <= b <= 126 for b in value)


def _unknown(argv):
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{argv[1].decode(errors='replace')}'. Try CLIENT HELP.")


def _syntax():
    return ReplyError("ERR syntax error")


def _on_off(raw: bytes):
    return {b"ON": True, b"OFF": False}.get(raw.upper())


# -- CLIENT PAUSE -------------------------------------------------------------------------
_MAY_REPLICATE = frozenset({"EVAL", "EVALSHA", "FCALL", "PUBLISH", "SPUBLISH", "PFCOUNT"})


class ClientPause:
    """One CLIENT PAUSE in force: its mode, its end, and the commands it postponed."""

    def __init__(self, server, mode: str, end: float):
        self.server = server
        self.mode = mode                      # "all" or "write"
        self.end = end                        # loop time
        self.postponed: list = []             # (future, conn, argv), in arrival order
        self.timer = asyncio.get_running_loop().call_at(end, self.lift)

    def extend(self, mode: str, end: float) -> None:
        """A second PAUSE: the later end and the stronger mode win (as Valkey)."""
        if mode == "all":
            self.mode = "all"
        if end > self.end:
            self.end = end
            self.timer.cancel()
            self.timer = asyncio.get_running_loop().call_at(end, self.lift)

    def covers(self, conn, spec) -> bool:
        if self.mode == "all":
            return True
        if spec.is_write or spec.name in _MAY_REPLICATE:
            return True
        return spec.name == "EXEC" and conn.multi is not None and any(
            (s := lookup(a[0])) is not None and (s.is_write or s.name in _MAY_REPLICATE)
            for a in conn.multi)

    def postpone(self, conn, argv) -> Blocked:
        future = asyncio.get_running_loop().create_future()
        self.postponed.append((future, conn, argv))
        return Blocked(future)

    def lift(self) -> None:
        """The pause ends: run what waited, in arrival order."""
        self.timer.cancel()
        server = self.server
        if server.client_pause is self:
            server.client_pause = None
        for future, conn, argv in self.postponed:
            if not future.done() and not conn.closing:
                _settle(future, server.execute(conn, argv))
        self.postponed.clear()


def _settle(future, reply) -> None:
    """Complete ``future`` with ``reply``, or with what a reply still pending becomes."""
    if type(reply) is Blocked:
        reply.future.add_done_callback(
            lambda f: future.done() or (future.cancel() if f.cancelled()
                                        else future.set_result(f.result())))
    else:
        future.set_result(reply)


def paused_reply(server, conn, spec, argv):
    """``NodeServer.execute``'s question while a pause lasts: postpone this command?"""
    pause = server.client_pause
    if conn.replica is not None or conn.is_primary_link or server._in_exec is not None:
        return None
    if not pause.covers(conn, spec):
        return None
    return pause.postpone(conn, argv)


# -- CLIENT UNBLOCK -----------------------------------------------------------------------
def unblock(server, target, error: bool) -> bool:
    """Unblock ``target`` if it waits in a blocking command (BLPOP & co., WAIT, WAITAOF):
    as if it timed out, or with the UNBLOCKED error. A client postponed by CLIENT PAUSE,
    sleeping in DEBUG SLEEP or waiting for a Raft read round is not unblocked (0)."""
    blocked_on = target.blocked_on
    if blocked_on is not None:
        return bool(blocked_on.unblock(error))
    future = getattr(target, "blocked_future", None)
    if future is None or future.done() or not target.blocked:
        return False
    repl = server.repl
    for waiter in repl.waiters:
        if waiter.future is future:
            repl.waiters.remove(waiter)
            if waiter.handle is not None:
                waiter.handle.cancel()
            future.set_result(UNBLOCKED if error else
                              repl._reply_for(waiter, server.fsynced_offset))
            return True
    return False


# -- CLIENT ---------------------------------------------------------------------------------
def _wrong_arity(sub: bytes):
    return ReplyError(f"ERR wrong number of arguments for 'client|{sub.decode().lower()}' command")


_ARITY = {b"ID": 2, b"GETNAME": 2, b"SETNAME": 3, b"INFO": 2, b"UNPAUSE": 2, b"GETREDIR": 2,
          b"TRACKINGINFO": 2, b"HELP": 2, b"REPLY": 3, b"NO-EVICT": 3, b"NO-TOUCH": 3,
          b"CACHING": 3, b"SETINFO": 4, b"LIST": -2, b"KILL": -3, b"PAUSE": -3,
          b"UNBLOCK": -3, b"TRACKING": -3, b"CAPA": -3}


@handles("CLIENT", -2, "loading stale", group="connection")
def client(server, conn, argv):
    """Inspect, name, pause, unblock and kill client connections."""
    sub = argv[1].upper()
    arity = _ARITY.get(sub)
    if arity is None:
        return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                          "Try CLIENT HELP.")
    if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
        return _wrong_arity(sub)
    return _SUBCOMMANDS[sub](server, conn, argv)


def _id(server, conn, argv):
    return conn.id


def _getname(server, conn, argv):
    return conn.name or None


def _setname(server, conn, argv):
    if not _valid_attribute(argv[2]):
        return ReplyError("ERR Client names cannot contain spaces, newlines or special characters.")
    conn.name = argv[2]
    return OK


def _setinfo(server, conn, argv):
    attr = argv[2].upper()
    if attr not in (b"LIB-NAME", b"LIB-VER"):
        return ReplyError(f"ERR Unrecognized option '{argv[2].decode(errors='replace')}'")
    if not _valid_attribute(argv[3]):
        return ReplyError(f"ERR {argv[2].decode(errors='replace')} cannot contain spaces, "
                          "newlines or special characters.")
    if attr == b"LIB-NAME":
        conn.lib_name = argv[3]
    else:
        conn.lib_ver = argv[3]
    return OK


def _info(server, conn, argv):
    return Verbatim((client_line(server, conn) + "\n").encode())


def _list(server, conn, argv):
    chosen = sorted(server.clients, key=lambda c: c.id)
    i = 2
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"TYPE" and i + 1 < len(argv):
            kind = _TYPES.get(argv[i + 1].lower())
            if kind is None:
                return ReplyError(f"ERR Unknown client type '{argv[i + 1].decode(errors='replace')}'")
            chosen = [c for c in chosen if client_type(c) == kind]
            i += 2
        elif opt == b"ID" and i + 1 < len(argv):
            ids = set()
            for raw in argv[i + 1:]:
                n = parse_int(raw)
                if n is None or n <= 0:
                    return ReplyError("ERR Invalid client ID")
                ids.add(n)
            chosen = [c for c in chosen if c.id in ids]
            i = len(argv)
        else:
            return _syntax()
    return Verbatim("".join(client_line(server, c) + "\n" for c in chosen).encode())


def _kill(server, conn, argv):
    if len(argv) == 3:                               # the old form: CLIENT KILL ip:port
        for c in list(server.clients):
            if c.addr == argv[2].decode(errors="replace"):
                _close(conn, c)
                return OK
        return ReplyError("ERR No such client")
    if len(argv) % 2:
        return _syntax()
    tests, skipme = [], True
    for i in range(2, len(argv), 2):
        opt, raw = argv[i].upper(), argv[i + 1]
        text = raw.decode(errors="replace")
        if opt == b"ID":
            n = parse_int(raw)
            if n is None or n <= 0:
                return ReplyError("ERR client-id should be greater than 0")
            tests.append(lambda c, n=n: c.id == n)
        elif opt == b"TYPE":
            kind = _TYPES.get(raw.lower())
            if kind is None:
                return ReplyError(f"ERR Unknown client type '{text}'")
            tests.append(lambda c, kind=kind: client_type(c) == kind)
        elif opt == b"ADDR":
            tests.append(lambda c, text=text: c.addr == text)
        elif opt == b"LADDR":
            tests.append(lambda c, text=text: c.laddr == text)
        elif opt == b"USER":
            tests.append(lambda c, text=text: text == "default")
        elif opt == b"MAXAGE":
            age = parse_int(raw)
            if age is None:
                return ReplyError("ERR value is not an integer or out of range")
            tests.append(lambda c, age=age: time.time() - c.created >= age)
        elif opt == b"SKIPME":
            if raw.lower() not in (b"yes", b"no"):
                return _syntax()
            skipme = raw.lower() == b"yes"
        else:
            return _syntax()
    killed = 0
    for c in list(server.clients):
        if (c is conn and skipme) or not all(test(c) for test in tests):
            continue
        _close(conn, c)
        killed += 1
    return killed


def _close(me, c) -> None:
    if c is me:
        c.closing = True          # answered first, then closed (as QUIT)
    else:
        c.close()


def _reply(server, conn, argv):
    mode = argv[2].upper()
    if mode == b"ON":
        conn.reply_off, conn.reply_skip = False, 0
    elif mode == b"OFF":
        conn.reply_off = True
    elif mode == b"SKIP":
        conn.reply_skip = 2          # this reply and the next command's
    else:
        return _syntax()
    conn.silenced = conn.reply_off or conn.reply_skip > 0
    return OK


def _no_evict(server, conn, argv):
    on = _on_off(argv[2])
    if on is None:
        return _syntax()
    conn.no_evict = on
    return OK


def _no_touch(server, conn, argv):
    on = _on_off(argv[2])
    if on is None:
        return _syntax()
    if on:
        server.no_touch.add(conn)
    else:
        server.no_touch.discard(conn)
    return OK


def _pause(server, conn, argv):
    timeout = parse_int(argv[2])
    if timeout is None:
        return ReplyError("ERR timeout is not an integer or out of range")
    if timeout < 0:
        return ReplyError("ERR timeout is negative")
    mode = "all"
    if len(argv) == 4:
        mode = {b"WRITE": "write", b"ALL": "all"}.get(argv[3].upper())
        if mode is None:
            return ReplyError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(argv) > 4:
        return _unknown(argv)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout / 1000
    if server.client_pause is None:
        server.client_pause = ClientPause(server, mode, end)
    else:
        server.client_pause.extend(mode, end)
    return OK


def _unpause(server, conn, argv):
    if server.client_pause is not None:
        server.client_pause.lift()
    return OK


def _unblock(server, conn, argv):
    target_id = parse_int(argv[2])
    if target_id is None:
        return ReplyError("ERR value is not an integer or out of range")
    error = False
    if len(argv) == 4:
        how = argv[3].upper()
        if how not in (b"TIMEOUT", b"ERROR"):
            return ReplyError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = how == b"ERROR"
    elif len(argv) > 4:
        return _unknown(argv)
    target = next((c for c in server.clients if c.id == target_id), None)
    return 1 if target is not None and unblock(server, target, error) else 0


def _tracking(server, conn, argv):
    state = argv[2].upper()
    if state == b"OFF":
        return OK
    if state != b"ON":
        return _syntax()
    return ReplyError("ERR CLIENT TRACKING ON is not supported: the workbench does not build "
                      "client-side caching (no invalidation messages are sent); use "
                      "CLIENT TRACKING OFF")


def _trackinginfo(server, conn, argv):
    return Map({b"flags": SetReply([Simple("off")]), b"redirect": -1, b"prefixes": []})


def _capa(server, conn, argv):
    """Valkey 8: the client announces what it can handle (``redirect``: a -REDIRECT from a
    replica). Noted and accepted; a node here never redirects, so nothing changes."""
    conn.capabilities = {a.lower() for a in argv[2:]}
    return OK


def _getredir(server, conn, argv):
    return -1


def _caching(server, conn, argv):
    return ReplyError("ERR CLIENT CACHING can be called only when the client is in tracking "
                      "mode with OPTIN or OPTOUT mode enabled")


def _help(server, conn, argv):
    return CLIENT_HELP


CLIENT_HELP = [
    b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CACHING (YES|NO)",
    b"    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    b"GETREDIR", b"    Return the client ID we are redirecting to when tracking is enabled.",
    b"GETNAME", b"    Return the name of the current connection.",
    b"ID", b"    Return the ID of the current connection.",
    b"INFO", b"    Return information about the current client connection.",
    b"KILL <ip:port>", b"    Kill connection made from <ip:port>.",
    b"KILL <option> <value> [<option> <value> [...]]",
    b"    Kill connections. Options are:",
    b"    * ADDR (<ip:port>|<unixsocket>:0)", b"      Kill connections made from the specified address",
    b"    * LADDR (<ip:port>|<unixsocket>:0)", b"      Kill connections made to specified local address",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", b"      Kill connections by type.",
    b"    * USER <username>", b"      Kill connections authenticated by <username>.",
    b"    * SKIPME (YES|NO)", b"      Skip killing current connection (default: yes).",
    b"    * ID <client-id>", b"      Kill connections by client id.",
    b"    * MAXAGE <maxage>", b"      Kill connections older than the specified age.",
    b"LIST [options ...]", b"    Return information about client connections. Options:",
    b"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", b"      Return clients of specified type.",
    b"    * ID <client-id> [<client-id> ...]", b"      Return clients of specified IDs only.",
    b"UNPAUSE", b"    Stop the current client pause, resuming traffic.",
    b"PAUSE <timeout> [WRITE|ALL]",
    b"    Suspend all, or just write, clients for <timeout> milliseconds.",
    b"REPLY (ON|OFF|SKIP)", b"    Control the replies sent to the current connection.",
    b"SETNAME <name>", b"    Assign the name <name> to the current connection.",
    b"SETINFO <option> <value>",
    b"    Set client meta attr. Options are:",
    b"    * LIB-NAME: the client lib name.", b"    * LIB-VER: the client lib version.",
    b"UNBLOCK <clientid> [TIMEOUT|ERROR]", b"    Unblock the specified blocked client.",
    b"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    b"         [OPTIN] [OPTOUT] [NOLOOP]",
    b"    Control server assisted client side caching (only OFF: tracking is not built here).",
    b"TRACKINGINFO", b"    Report tracking status for the current connection.",
    b"NO-EVICT (ON|OFF)", b"    Protect current client connection from eviction.",
    b"NO-TOUCH (ON|OFF)",
    b"    Will not touch LRU/LFU stats when this mode is on.",
    b"CAPA <option> [options...]",
    b"    The client claims its some capability options (Valkey 8: 'redirect').",
    b"HELP", b"    Prints this help."]

_SUBCOMMANDS = {b"ID": _id, b"GETNAME": _getname, b"SETNAME": _setname, b"SETINFO": _setinfo,
                b"INFO": _info, b"LIST": _list, b"KILL": _kill, b"REPLY": _reply,
                b"NO-EVICT": _no_evict, b"NO-TOUCH": _no_touch, b"PAUSE": _pause,
                b"UNPAUSE": _unpause, b"UNBLOCK": _unblock, b"TRACKING": _tracking,
                b"TRACKINGINFO": _trackinginfo, b"GETREDIR": _getredir, b"CACHING": _caching,
                b"CAPA": _capa, b"HELP": _help}


__all__ = ["ClientPause", "paused_reply", "unblock", "client_line"]
