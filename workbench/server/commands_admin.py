"""Administration commands: INFO, CONFIG, DEBUG."""

from __future__ import annotations

import asyncio
import os
import re
import time

from ..resp import OK, Map, ReplyError, Simple, Verbatim, strict_int
from .config import ConfigError
from .connection import Blocked
from .registry import handles
from . import debug_tools

VERSION = "7.2.4"


def _section_server(s) -> list[str]:
    return ["# Server", f"redis_version:{VERSION}", "server_name:valkey",
            "valkey_version:8.0.1", "workbench_node:" + s.name, "redis_mode:standalone",
            f"process_id:{os.getpid()}", f"run_id:{s.run_id}", f"tcp_port:{s.port}",
            f"uptime_in_seconds:{int(time.time() - s.started)}",
            f"hz:{s.config['hz']}", "executable:workbench", "config_file:"]


def _section_clients(s) -> list[str]:
    blocked = sum(1 for c in s.clients if c.blocked)
    pubsub = sum(1 for c in s.clients if c.channels or c.patterns)
    return ["# Clients", f"connected_clients:{len(s.clients)}", f"blocked_clients:{blocked}",
            f"pubsub_clients:{pubsub}", f"watching_clients:{len({c for cs in s.watchers.values() for c in cs})}",
            f"maxclients:{s.config['maxclients']}"]


def _section_persistence(s) -> list[str]:
    aof = s.aof
    lines = ["# Persistence", "loading:0", "async_loading:0", "rdb_changes_since_last_save:0",
             "rdb_bgsave_in_progress:0", "rdb_last_bgsave_status:ok",
             f"aof_enabled:{1 if aof is not None else 0}", "aof_rewrite_in_progress:0",
             "aof_rewrite_scheduled:0",
             f"aof_last_write_status:{'err' if s.aof_error else 'ok'}"]
    if aof is not None:
        lines += [f"aof_current_size:{aof.written_size}", f"aof_fsynced_size:{aof.fsynced_size}",
                  f"aof_buffer_length:{aof.buffered}",
                  f"aof_fsynced_offset:{s.fsynced_offset}",
                  f"aof_pending_bio_fsync:{1 if aof.written_size > aof.fsynced_size else 0}",
                  "aof_delayed_fsync:0", f"aof_fsync_policy:{s.config['appendfsync']}",
                  f"aof_loaded_commands:{s.loaded_commands}"]
    return lines


def _section_stats(s) -> list[str]:
    return ["# Stats", f"total_connections_received:{s.stat_connections}",
            f"total_commands_processed:{s.stat_commands}",
            f"rejected_commands:{s.stat_rejected}",
            f"pubsub_channels:{len(s.pubsub.channels)}", f"pubsub_patterns:{len(s.pubsub.patterns)}"]


def _section_replication(s) -> list[str]:
    repl = s.repl
    lines = ["# Replication", f"role:{s.role}"]
    link = s.link
    if link is not None:
        now = time.monotonic()
        up = link.status == "connected"
        lines += [f"master_host:{link.host}", f"master_port:{link.port}",
                  f"master_name:{link.primary_name}",
                  f"master_link_status:{'up' if up else 'down'}",
                  f"master_last_io_seconds_ago:{int(now - link.last_io) if up else -1}",
                  f"master_sync_in_progress:{1 if link.sync_in_progress else 0}",
                  f"slave_read_repl_offset:{repl.offset}", f"slave_repl_offset:{repl.offset}"]
        if not up:
            lines.append(f"master_link_down_since_seconds:{int(now - link.down_since)}")
        lines += ["slave_priority:100", f"slave_read_only:{1 if s.config['replica-read-only'] else 0}",
                  "replica_announced:1"]
    sync = s.config["durability-mode"] == "sync"
    if sync and link is not None:
        lines.append(f"replica_eligible:{1 if s.replica_eligible else 0}")
    eligibility = s.eligibility
    lines += repl.info_lines(eligibility.is_eligible if eligibility is not None else None)
    if sync:
        lines.append("durability_mode:sync")
        lines.append(f"durability_replicas:{s.config['durability-replicas']}")
        if eligibility is not None:
            lines += [f"eligible_replicas:{len(eligibility.eligible)}",
                      f"eligible_replica_names:{','.join(eligibility.eligible)}",
                      f"committed_offset:{s.gate.committed_offset}"]
    if s.raft is not None:
        lines.append("durability_mode:raft")
        if s.gate is not None:
            lines.append(f"committed_offset:{s.gate.committed_offset}")
    if s.config["min-replicas-to-write"] and s.config["min-replicas-max-lag"]:
        lines.append(f"min_slaves_good_slaves:{repl.good_replicas(s.config['min-replicas-max-lag'])}")
    lines += ["master_failover_state:no-failover", f"master_replid:{repl.replid}",
              f"master_replid2:{repl.replid2}", f"master_repl_offset:{repl.offset}",
              f"second_repl_offset:{repl.second_offset}", "repl_backlog_active:1",
              f"repl_backlog_size:{repl.backlog.size}",
              f"repl_backlog_first_byte_offset:{repl.backlog.first_offset}",
              f"repl_backlog_histlen:{repl.backlog.histlen}"]
    return lines


def _section_keyspace(s) -> list[str]:
    lines = ["# Keyspace"]
    for db in s.keyspace.dbs:
        if db.data:
            lines.append(f"db{db.id}:keys={len(db.data)},expires={len(db.expires)},avg_ttl=0")
    return lines


SECTIONS = {"server": _section_server, "clients": _section_clients,
            "persistence": _section_persistence, "stats": _section_stats,
            "replication": _section_replication, "keyspace": _section_keyspace}
EXTRA_SECTIONS: dict = {}      # later layers (the commit gate, Raft) add theirs here
DEFAULT_SECTIONS = list(SECTIONS)


def info_text(server, names: list[str]) -> str:
    wanted = [n.lower() for n in names] or ["default"]
    if any(n in ("all", "everything", "default") for n in wanted):
        wanted = DEFAULT_SECTIONS + (list(EXTRA_SECTIONS) if "default" not in wanted else [])
    blocks = []
    for name in wanted:
        section = SECTIONS.get(name) or EXTRA_SECTIONS.get(name)
        lines = section(server) if section is not None else None
        if lines:
            blocks.append("\r\n".join(lines))
    return "\r\n\r\n".join(blocks) + "\r\n"


@handles("INFO", -1, "loading stale", group="server")
def info(server, conn, argv):
    """Information and statistics about the node, by section."""
    text = info_text(server, [a.decode(errors="replace") for a in argv[1:]])
    return Verbatim(text.encode())


@handles("CONFIG", -2, "admin loading stale", group="server")
def config(server, conn, argv):
    """Read and change the node's configuration."""
    sub = argv[1].upper()
    if sub == b"GET" and len(argv) >= 3:
        found = {}
        for pattern in argv[2:]:
            found.update(server.config.get(pattern.decode(errors="replace")))
        return Map({k.encode(): v.encode() for k, v in found.items()})
    if sub == b"SET" and len(argv) >= 4 and len(argv) % 2 == 0:
        pairs = [(argv[i].decode(errors="replace"), argv[i + 1].decode(errors="replace"))
                 for i in range(2, len(argv), 2)]
        for name, value in pairs:
            try:
                server.node.apply_config(name, value)
            except ConfigError as err:
                return ReplyError(f"ERR {err}")
        return OK
    if sub == b"SET":
        name = argv[2].decode(errors="replace") if len(argv) > 2 else ""
        return ReplyError(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
    if sub == b"RESETSTAT" and len(argv) == 2:
        server.stat_commands = server.stat_connections = server.stat_rejected = 0
        return OK
    if sub == b"REWRITE" and len(argv) == 2:
        return OK
    if sub == b"HELP":
        if len(argv) != 2:
            return ReplyError("ERR wrong number of arguments for 'config|help' command")
        return _CONFIG_HELP
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{argv[1].decode(errors='replace')}'. Try CONFIG HELP.")


_CONFIG_HELP = [
    b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GET <pattern>", b"    Return parameters matching the glob-like <pattern> and their values.",
    b"SET <directive> <value>", b"    Set the configuration <directive> to <value>.",
    b"RESETSTAT", b"    Reset statistics reported by the INFO command.",
    b"REWRITE", b"    Rewrite the configuration file.",
    b"HELP", b"    Prints this help."]


@handles("BGREWRITEAOF", 1, "admin noscript", group="server")
def bgrewriteaof(server, conn, argv):
    """Rewrite the append-only file from the keyspace.

    Valkey forks and rewrites in the background; a node here writes the rebuilding
    commands to a temporary file, fsyncs it and renames it over the AOF before it
    answers -- the same result, with the loop paused meanwhile. Refused where the AOF is
    not the node's to rewrite (no AOF, a raft node, the write-behind log) or while
    writes still wait to become durable."""
    from .debug_tools import rewrite_aof, rewrite_refusal
    refusal = rewrite_refusal(server, "BGREWRITEAOF")
    if refusal is not None:
        return refusal
    if server.aof is None:
        return ReplyError("ERR BGREWRITEAOF needs an AOF: appendonly is off on this node")
    failed = rewrite_aof(server)
    if failed is not None:
        return failed
    server.log("Background append only file rewriting started (done in place)")
    return Simple("Background append only file rewriting started")


@handles("LOLWUT", -1, "readonly fast", group="server", since="5.0.0")
def lolwut(server, conn, argv):
    """Display some computer art and the server version."""
    if len(argv) >= 3 and argv[1].upper() == b"VERSION" and strict_int(argv[2]) is None:
        return ReplyError("ERR value is not an integer or out of range")
    return Verbatim(b"Durability Workbench: every acknowledged write, accounted for.\n"
                    b"Valkey-compatible ver. " + VERSION.encode() + b"\n")


DEBUG_HOOKS: dict = {}   # b"reply-blocking-pause" -> handler(server, conn, argv), from later layers

DEBUG_NOT_ALLOWED = ReplyError(
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", "
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server.")


def protected_refusal(server, conn) -> ReplyError | None:
    """Valkey's gate on its ``protected`` command DEBUG: ``enable-debug-command`` says who
    may run it (``no``: nobody, ``local``: loopback clients, ``yes``: everybody). It is
    checked before authentication, as Valkey does; a password then protects DEBUG too."""
    allowed = server.config["enable-debug-command"]
    if allowed == "yes" or (allowed == "local" and _is_local(conn)):
        return None
    return DEBUG_NOT_ALLOWED


def _is_local(conn) -> bool:
    host = conn.addr.rsplit(":", 1)[0]
    return host.startswith("127.") or host == "::1"


_STRTOD_PREFIX = re.compile(
    rb"\s*[+-]?(?:0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE)


def strtod(raw: bytes) -> float:
    """What C's ``strtod(raw, NULL)`` returns: the longest numeric prefix, 0.0 if none."""
    match = _STRTOD_PREFIX.match(raw)
    if match is None:
        return 0.0
    text = match.group().decode()
    return float.fromhex(text) if "x" in text.lower() else float(text)


def sleep_microseconds(seconds: float) -> int:
    """Valkey's ``long long utime = dtime * 1000000`` as x86-64 computes it: a product
    that no 64-bit integer holds (nan, inf, 1e300) becomes the most negative one."""
    micros = seconds * 1_000_000
    if micros != micros or not -2**63 <= micros < 2**63:
        return -2**63
    return int(micros)


def _debug_sleep(argv):
    """DEBUG SLEEP parses as Valkey does (``strtod``, no error: ``abc`` is 0) and never
    sleeps for a time that is negative or not a number (``-1``, ``nan``, ``inf``, ``1e300``):
    Valkey's ``nanosleep`` refuses those and it answers +OK at once. Valkey sleeps the
    whole server; here only this client waits, so a teaching session is never frozen."""
    micros = sleep_microseconds(strtod(argv[2]))
    if micros <= 0:
        return OK
    loop = asyncio.get_running_loop()
    woken = loop.create_future()
    timer = loop.call_later(micros / 1_000_000, lambda: woken.done() or woken.set_result(OK))
    woken.add_done_callback(lambda _: timer.cancel())
    return Blocked(woken)


@handles("DEBUG", -2, "admin loading stale no_multi protected", group="server")
def debug(server, conn, argv):
    """Testing levers: DEBUG SLEEP <seconds>, and the hooks later layers register."""
    sub = argv[1].upper()
    if sub == b"SLEEP" and len(argv) == 3:
        return _debug_sleep(argv)
    if sub == b"HELP" and len(argv) == 2:
        return ([b"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                 b"SLEEP <seconds>",
                 b"    Hold this client's reply for <seconds> (other clients go on)."]
                + debug_tools.HELP
                + [name.upper() for name in sorted(DEBUG_HOOKS)]
                + [b"HELP", b"    Print this help."])
    tool = debug_tools.SUBCOMMANDS.get(sub)
    if tool is not None:
        return tool(server, conn, argv)
    hook = DEBUG_HOOKS.get(sub.lower())
    if hook is not None:
        return hook(server, conn, argv)
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{argv[1].decode(errors='replace')}'. Try DEBUG HELP.")
