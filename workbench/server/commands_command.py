"""COMMAND: the command table as clients see it (COUNT, LIST, INFO, DOCS, GETKEYS).

``COMMAND INFO`` shows each command's arity, flags, key positions and ACL categories
(derived from its flags and group); ``COMMAND GETKEYS`` finds keys with the same
``spec.keys(argv)`` the server uses, so movable keys (``find_keys``) come out exactly.
"""

from __future__ import annotations

from ..resp import Map, ReplyError, SetReply, Simple
from ..store import COMMANDS, lookup
from ..store.glob import glob_match
from .registry import handles


def _syntax():
    return ReplyError("ERR syntax error")


_GROUP_CATEGORY = {"string": "@string", "list": "@list", "hash": "@hash", "set": "@set",
                   "sorted-set": "@sortedset", "geo": "@geo",
                   "bitmap": "@bitmap", "hyperloglog": "@hyperloglog", "generic": "@keyspace",
                   "pubsub": "@pubsub", "transactions": "@transaction",
                   "connection": "@connection", "scripting": "@scripting", "server": "@admin"}


def acl_categories(spec) -> list[str]:
    """Valkey's ACL categories of a command, derived from its flags and group."""
    cats = []
    if spec.is_write:
        cats.append("@write")
    if spec.is_readonly:
        cats.append("@read")
    group = _GROUP_CATEGORY.get(spec.group)
    if group == "@admin" and "admin" not in spec.flags:
        group = None
    if group is not None:
        cats.append(group)
    if "admin" in spec.flags:
        cats += ["@admin", "@dangerous"] if group != "@admin" else ["@dangerous"]
    cats.append("@fast" if "fast" in spec.flags else "@slow")
    if "blocking" in spec.flags:
        cats.append("@blocking")
    return list(dict.fromkeys(cats))


def _command_info(spec):
    flags = [f for f in sorted(spec.flags) if f not in ("server", "keyspace")]
    if spec.find_keys is not None and "movablekeys" not in flags:
        flags.append("movablekeys")
    return [spec.name.lower().encode(), spec.arity, SetReply([Simple(f) for f in flags]),
            spec.first_key, spec.last_key, spec.step,
            SetReply([Simple(c) for c in acl_categories(spec)]), [], [], []]


def _command_docs(spec):
    docs = {b"summary": spec.summary.encode(), b"since": spec.since.encode(),
            b"group": spec.group.encode()}
    complexity = getattr(spec, "complexity", "")
    if complexity:
        docs[b"complexity"] = complexity.encode()
    return Map(docs)


def _getkeys(argv, with_flags: bool):
    spec = lookup(argv[2])
    if spec is None:
        return ReplyError("ERR Invalid command specified")
    command_argv = argv[2:]
    if not spec.arity_ok(len(command_argv)):
        return ReplyError("ERR Invalid number of arguments specified for command")
    if not spec.first_key and spec.find_keys is None:
        return ReplyError("ERR The command has no key arguments")
    keys = spec.keys(command_argv)
    if not keys:
        return ReplyError("ERR The command has no key arguments")
    if not with_flags:
        return keys
    flag = [Simple("RW" if spec.is_write else "RO"),
            Simple("update" if spec.is_write else "access")]
    return [[key, SetReply(flag)] for key in keys]


def _command_list(argv):
    names = [s.name.lower().encode() for s in COMMANDS.values()]
    if len(argv) == 2:
        return names
    if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
        return _syntax()
    how, what = argv[3].upper(), argv[4]
    if how == b"MODULE":
        return []
    if how == b"PATTERN":
        return [n for n in names if glob_match(what.lower(), n)]
    if how == b"ACLCAT":
        cat = "@" + what.decode(errors="replace").lower()
        return [s.name.lower().encode() for s in COMMANDS.values() if cat in acl_categories(s)]
    return _syntax()


COMMAND_HELP = [
    b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"(no subcommand)", b"    Return details about all commands.",
    b"COUNT", b"    Return the total number of commands in this server.",
    b"LIST", b"    Return a list of all commands in this server.",
    b"INFO [<command-name> ...]", b"    Return details about multiple commands.",
    b"    If no command names are given, documentation details for all",
    b"    commands are returned.",
    b"DOCS [<command-name> ...]", b"    Return documentation details about multiple commands.",
    b"    If no command names are given, documentation details for all",
    b"    commands are returned.",
    b"GETKEYS <full-command>", b"    Return the keys from a full command.",
    b"GETKEYSANDFLAGS <full-command>",
    b"    Return the keys and the access flags from a full command.",
    b"HELP", b"    Prints this help."]

_COMMAND_ARITY = {b"COUNT": 2, b"HELP": 2, b"LIST": -2, b"INFO": -2, b"DOCS": -2,
                  b"GETKEYS": -3, b"GETKEYSANDFLAGS": -3}


@handles("COMMAND", -1, "loading stale", group="server")
def command(server, conn, argv):
    """Describe the commands this node knows."""
    if len(argv) == 1:
        return [_command_info(s) for s in COMMANDS.values()]
    sub = argv[1].upper()
    arity = _COMMAND_ARITY.get(sub)
    if arity is None:
        return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                          "Try COMMAND HELP.")
    if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
        return ReplyError(f"ERR wrong number of arguments for 'command|{sub.decode().lower()}' "
                          "command")
    if sub == b"COUNT":
        return len(COMMANDS)
    if sub == b"HELP":
        return COMMAND_HELP
    if sub == b"INFO":
        names = argv[2:] or [s.name.encode() for s in COMMANDS.values()]
        return [_command_info(s) if (s := lookup(n)) else None for n in names]
    if sub == b"DOCS":
        names = argv[2:] or [s.name.encode() for s in COMMANDS.values()]
        return Map({s.name.lower().encode(): _command_docs(s)
                    for n in names if (s := lookup(n)) is not None})
    if sub == b"LIST":
        return _command_list(argv)
    return _getkeys(argv, with_flags=sub == b"GETKEYSANDFLAGS")
