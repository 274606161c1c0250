"""Introspection commands clients and test suites send: TIME, LASTSAVE, OBJECT, MEMORY,
LATENCY and SLOWLOG.

They look at the node (its clock, its keys' values, its history of slow commands) but
change nothing. Three pieces of bookkeeping feed them, all kept off the hot path:

* **Last access per key** (``OBJECT IDLETIME``): ``NodeServer.execute`` stamps the keys
  of each command with the current second in ``server.key_access`` (skipped for a
  ``CLIENT NO-TOUCH`` client), as Valkey's LRU clock does at one-second resolution; only
  the most recent :data:`ACCESS_STAMPS` keys keep a stamp of their own.
* **The slow log** (``SLOWLOG``): commands slower than ``slowlog-log-slower-than``
  microseconds, timed with two ``monotonic_ns`` calls only while the threshold is on.
* **Encodings promoted once** (``OBJECT ENCODING``): Valkey turns a compact container
  (listpack, intset) into a big one when it outgrows a ``*-max-listpack-*`` limit and never
  turns it back (lists excepted, below half the limit). The encoding is computed from the
  value's contents; a value seen in a big encoding is remembered (by identity) so that it
  keeps reporting it after it shrinks. A value that grows and shrinks back without being
  looked at in between reports the compact encoding again: a simplification.
"""

from __future__ import annotations

import time
from collections import deque

from ..resp import OK, Double, Map, ReplyError
from ..store.values import parse_int
from .registry import handles



# -- looking at a key without changing anything --------------------------------------------
def peek(server, db: int, key: bytes):
    """The live value of ``key`` in ``db``, or ``None``; an expired key is not deleted here
    (the active expiry cycle or the next command that touches it will)."""
    database = server.keyspace.dbs[db]
    value = database.data.get(key)
    if value is not None and database.expires:
        when = database.expires.get(key)
        if when is not None and when <= time.time() * 1000:
            return None
    return value


# -- the last access of each key (OBJECT IDLETIME) ----------------------------------------
# At most this many keys keep their own access stamp: a stamp per key would double a
# node's memory per key (66 MB for 500,000 small keys), more than a 2 GB Binder can spare.
ACCESS_STAMPS = 16_384


def touch(server, db: int, keys, now_s: int) -> None:
    """Stamp ``keys`` as accessed now, most recent last. Past :data:`ACCESS_STAMPS` the
    oldest stamp goes, and ``key_access_forgotten`` remembers the newest stamp forgotten."""
    access = server.key_access
    for key in keys:
        item = (db, key)
        if item in access:
            del access[item]                      # re-inserted last: most recent
        access[item] = now_s
    while len(access) > ACCESS_STAMPS:
        oldest = next(iter(access))
        server.key_access_forgotten = access.pop(oldest)


def idle_seconds(server, db: int, key: bytes) -> int:
    """Seconds since ``key`` was last accessed. A key without a stamp was last touched
    before the oldest stamp kept (or never, since this node started -- e.g. loaded from
    the AOF): the answer is then a lower bound, as Valkey's 24-bit LRU clock is coarse."""
    last = server.key_access.get((db, key))
    if last is None:
        last = max(int(server.started), server.key_access_forgotten)
    return max(0, int(time.time()) - last)


# -- OBJECT ENCODING ------------------------------------------------------------------------
def _is_long(raw: bytes) -> bool:
    """Valkey's ``string2l``: a 64-bit integer with no sign '+', no leading zeros, no spaces."""
    if not raw or len(raw) > 20:
        return False
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits.isdigit() or (digits[:1] == b"0" and (len(digits) > 1 or raw[:1] == b"-")):
        return False
    return parse_int(raw) is not None


def _list_fits(config, items) -> bool:
    """list-max-listpack-size: > 0 counts entries, -1..-5 is 4..64 KB of listpack bytes
    (approximated as the elements' bytes + 2 per entry + 7 for the header)."""
    limit = config["list-max-listpack-size"]
    if limit > 0:
        return len(items) <= limit
    budget = 4096 << (min(-limit, 5) - 1)
    total = 7
    for item in items:
        total += len(item) + 2
        if total > budget:
            return False
    return True


def _short(items, limit: int) -> bool:
    return all(len(item) <= limit for item in items)


def _zset_type():
    try:
        from ..store.zset import ZSet     # written alongside; imported when first needed
    except ImportError:
        return None
    return ZSet


def compact_encoding(config, value) -> tuple[str, str]:
    """(compact, big) encodings of ``value`` as Valkey names them; compact is None when
    the contents already need the big one."""
    kind = type(value)
    if kind is bytes:
        if _is_long(value):
            return "int", "int"
        return ("embstr", "raw") if len(value) <= 44 else (None, "raw")
    if kind is deque:
        return ("listpack" if _list_fits(config, value) else None), "quicklist"
    if kind is set:
        if len(value) <= config["set-max-intset-entries"] and all(_is_long(m) for m in value):
            return "intset", "hashtable"
        if (len(value) <= config["set-max-listpack-entries"]
                and _short(value, config["set-max-listpack-value"])):
            return "listpack", "hashtable"
        return None, "hashtable"
    if kind is dict:
        if (len(value) <= config["hash-max-listpack-entries"]
                and _short(value, config["hash-max-listpack-value"])
                and _short(value.values(), config["hash-max-listpack-value"])):
            return "listpack", "hashtable"
        return None, "hashtable"
    if kind is _zset_type():
        if (len(value) <= config["zset-max-listpack-entries"]
                and all(len(m) <= config["zset-max-listpack-value"] for m, _ in value.items())):
            return "listpack", "skiplist"
        return None, "skiplist"
    return None, kind.__name__.lower()


_RANK = {"intset": 0, "listpack": 1, "hashtable": 2, "skiplist": 2, "quicklist": 2}


def encoding(server, db: int, key: bytes, value) -> str:
    """The encoding Valkey would report for ``value`` (see the module docstring)."""
    compact, big = compact_encoding(server.config, value)
    current = compact or big
    if current not in _RANK:
        return current                          # strings: re-encoded by every write
    promoted = server.__dict__.setdefault("promoted_values", {})
    seen = promoted.get((db, key))
    if seen is not None and seen[0] is not value:
        seen = None                             # the key was deleted or overwritten since
    if seen is not None and _RANK[seen[1]] > _RANK[current]:
        if type(value) is deque and _list_fits_half(server.config, value):
            seen = None                         # Valkey converts a list back below half
        else:
            current = seen[1]                   # never converted back
    if _RANK[current] > 0 or type(value) is set and current == "listpack":
        promoted[(db, key)] = (value, current)
    elif seen is None:
        promoted.pop((db, key), None)
    return current


def _list_fits_half(config, items) -> bool:
    limit = config["list-max-listpack-size"]
    if limit > 0:
        return len(items) <= limit // 2
    return _list_fits({"list-max-listpack-size": -max(1, min(-limit, 5))}, items) and \
        sum(len(i) + 2 for i in items) + 7 <= (4096 << (min(-limit, 5) - 1)) // 2


SHARED_INTEGERS = 10000     # Valkey shares the objects of the integers 0..9999


@handles("OBJECT", -2, "", group="generic", since="2.2.3")
def object_(server, conn, argv):
    """Inspect the internals of a key's value: ENCODING, FREQ, IDLETIME, REFCOUNT."""
    sub = argv[1].upper()
    if sub not in (b"ENCODING", b"FREQ", b"IDLETIME", b"REFCOUNT", b"HELP"):
        return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                          "Try OBJECT HELP.")
    if len(argv) != (2 if sub == b"HELP" else 3):
        return ReplyError(f"ERR wrong number of arguments for 'object|{sub.decode().lower()}' "
                          "command")
    if sub == b"HELP":
        return OBJECT_HELP
    key = argv[2]
    value = peek(server, conn.db, key)
    if value is None:
        return None
    if sub == b"ENCODING":
        return encoding(server, conn.db, key, value).encode()
    if sub == b"IDLETIME":
        if "lfu" in server.config["maxmemory-policy"]:
            return ReplyError("ERR An LFU maxmemory policy is selected, idle time not "
                              "tracked. Please note that when switching between policies at "
                              "runtime LRU and LFU data will take some time to adjust.")
        return idle_seconds(server, conn.db, key)
    if sub == b"FREQ":
        if "lfu" not in server.config["maxmemory-policy"]:
            return ReplyError("ERR An LFU maxmemory policy is not selected, access frequency "
                              "not tracked. Please note that when switching between policies "
                              "at runtime LRU and LFU data will take some time to adjust.")
        return 0        # no access counter is kept: a key never read recently (LFU_INIT_VAL decays)
    if type(value) is bytes and _is_long(value) and 0 <= int(value) < SHARED_INTEGERS:
        return 2147483647
    return 1


OBJECT_HELP = [
    b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"ENCODING <key>",
    b"    Return the kind of internal representation used in order to store the value",
    b"    associated with a <key>.",
    b"FREQ <key>",
    b"    Return the access frequency index of the <key>. The returned integer is",
    b"    proportional to the logarithm of the recent access frequency of the key.",
    b"IDLETIME <key>",
    b"    Return the idle time of the <key>, that is the approximated number of",
    b"    seconds elapsed since the last access to the key.",
    b"REFCOUNT <key>",
    b"    Return the number of references of the value associated with the specified",
    b"    <key>.",
    b"HELP",
    b"    Prints this help."]


# -- TIME, LASTSAVE -----------------------------------------------------------------------
@handles("TIME", 1, "loading stale fast", group="server", since="2.6.0")
def time_(server, conn, argv):
    """The server time: [unix seconds, microseconds]."""
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]


@handles("LASTSAVE", 1, "loading stale fast", group="server")
def lastsave(server, conn, argv):
    """Unix time of the last save: the node's start, or its last DEBUG RELOAD."""
    return int(server.__dict__.get("last_save", server.started))


# -- MEMORY ---------------------------------------------------------------------------------
ROBJ, DICT_ENTRY, BUCKET = 16, 24, 8


def _sds(n: int) -> int:
    """Bytes of an sds string of length ``n`` (header by size class, trailing NUL)."""
    return n + 1 + (3 if n < 256 else 5 if n < 65536 else 9)


def memory_usage(server, db: int, key: bytes, value, samples: int) -> int:
    """An honest estimate of what Valkey would use for ``key`` and ``value``:

    key: a dict entry (24) + the key's sds + the value's object header (16); then by
    encoding -- int: 0; embstr/raw: the string's sds; listpack: 7 + per element its
    bytes + 2 (+ the score as 9 bytes for a sorted set); quicklist: 32 per 8 KB node +
    the listpack bytes; intset: 8 + 8 per member; hashtable (set/hash): per element a
    dict entry + bucket + the sds of member (and value); skiplist: per member a dict
    entry + bucket + its sds + a 40-byte skiplist node. Like Valkey, a big container's
    per-element part is averaged over ``samples`` elements (0 = all) and multiplied out.
    """
    size = DICT_ENTRY + _sds(len(key)) + ROBJ
    enc = encoding(server, db, key, value)
    if enc == "int":
        return size
    if enc in ("embstr", "raw"):
        return size + _sds(len(value))
    if enc == "intset":
        return size + 8 + 8 * len(value)
    if enc == "stream":     # its nodes' listpacks + radix tree, groups, PEL entries (NACKs)
        return size + value.memory_estimate()
    if type(value) is dict:
        items = ((f, v) for f, v in value.items())
        per = (lambda fv: len(fv[0]) + len(fv[1]) + 4) if enc == "listpack" else \
            (lambda fv: DICT_ENTRY + BUCKET + _sds(len(fv[0])) + _sds(len(fv[1])))
    elif type(value) is deque or type(value) is set:
        items = iter(value)
        per = (lambda m: len(m) + 2) if enc in ("listpack", "quicklist") else \
            (lambda m: DICT_ENTRY + BUCKET + _sds(len(m)))
    else:                                          # a sorted set
        items = (m for m, _ in value.items())
        per = (lambda m: len(m) + 2 + 9) if enc == "listpack" else \
            (lambda m: DICT_ENTRY + BUCKET + _sds(len(m)) + 40)
    count = len(value)
    taken = total = 0
    for item in items:
        total += per(item)
        taken += 1
        if samples and taken >= samples:
            break
    elements = total * count // taken if taken else 0
    if enc == "listpack":
        return size + 7 + elements
    if enc == "quicklist":
        return size + 32 * (1 + elements // 8192) + elements
    return size + 32 + BUCKET * count + elements        # the dict's table


def _dataset_bytes(server) -> tuple[int, int]:
    keys = total = 0
    for database in server.keyspace.dbs:
        for key, value in database.data.items():
            keys += 1
            total += memory_usage(server, database.id, key, value, 5)
    return keys, total


@handles("MEMORY", -2, "", group="server", since="4.0.0")
def memory(server, conn, argv):
    """Memory estimates: USAGE key [SAMPLES n], STATS, DOCTOR."""
    sub = argv[1].upper()
    if sub == b"USAGE" and len(argv) >= 3:
        samples = 5
        i = 3
        while i < len(argv):
            if argv[i].upper() == b"SAMPLES" and i + 1 < len(argv):
                samples = parse_int(argv[i + 1])
                if samples is None:
                    return ReplyError("ERR value is not an integer or out of range")
                if samples < 0:
                    return ReplyError("ERR syntax error")
                i += 2
            else:
                return ReplyError("ERR syntax error")
        value = peek(server, conn.db, argv[2])
        if value is None:
            return None
        return memory_usage(server, conn.db, argv[2], value, samples)
    if sub == b"USAGE":
        return ReplyError("ERR wrong number of arguments for 'memory|usage' command")
    if len(argv) != 2 and sub in (b"STATS", b"DOCTOR", b"HELP", b"PURGE", b"MALLOC-STATS"):
        return ReplyError(f"ERR wrong number of arguments for 'memory|{sub.decode().lower()}' "
                          "command")
    if sub == b"STATS":
        keys, dataset = _dataset_bytes(server)
        overhead = sum(32 + BUCKET * len(d.data) for d in server.keyspace.dbs if d.data)
        total = dataset + overhead
        stats = {b"peak.allocated": total, b"total.allocated": total,
                 b"startup.allocated": 0,
                 b"replication.backlog": server.repl.backlog.histlen,
                 b"clients.slaves": 0, b"clients.normal": 0,
                 b"aof.buffer": server.aof.buffered if server.aof is not None else 0}
        for database in server.keyspace.dbs:
            if database.data:
                stats[f"db.{database.id}".encode()] = Map({
                    b"overhead.hashtable.main": 32 + BUCKET * len(database.data),
                    b"overhead.hashtable.expires": 32 + BUCKET * len(database.expires)})
        stats.update({b"overhead.total": overhead, b"keys.count": keys,
                      b"keys.bytes-per-key": total // keys if keys else 0,
                      b"dataset.bytes": dataset,
                      b"dataset.percentage": Double(100.0 * dataset / total if total else 0.0)})
        return Map(stats)
    if sub == b"DOCTOR":
        return (b"Hi Sam, this instance is a workbench node: its memory is Python's, so the "
                b"allocator reports of Valkey's doctor do not apply. MEMORY USAGE and MEMORY "
                b"STATS give estimates of what Valkey would use for the same data.")
    if sub == b"PURGE":
        return OK
    if sub == b"MALLOC-STATS":
        return b"Stats not supported for the current allocator"
    if sub == b"HELP":
        return MEMORY_HELP
    return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                      "Try MEMORY HELP.")


MEMORY_HELP = [
    b"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR", b"    Return memory problems reports.",
    b"MALLOC-STATS", b"    Return internal statistics report from the memory allocator.",
    b"PURGE", b"    Attempt to purge dirty pages for reclamation by the allocator.",
    b"STATS", b"    Return information about the memory usage of the server.",
    b"USAGE <key> [SAMPLES <count>]",
    b"    Return memory in bytes used by <key> and its value. Nested values are",
    b"    sampled up to <count> times (default: 5, 0 means sample all).",
    b"HELP", b"    Prints this help."]


# -- LATENCY: a server that recorded no latency event ------------------------------------
@handles("LATENCY", -2, "", group="server", since="2.8.13")
def latency(server, conn, argv):
    """Latency monitor: LATEST, HISTORY, RESET, DOCTOR (no events are recorded here)."""
    sub = argv[1].upper()
    fixed = {b"LATEST": 2, b"DOCTOR": 2, b"HELP": 2, b"HISTORY": 3, b"GRAPH": 3}
    if sub in fixed and len(argv) != fixed[sub]:
        return ReplyError(f"ERR wrong number of arguments for 'latency|{sub.decode().lower()}' "
                          "command")
    if sub in (b"LATEST", b"HISTORY"):
        return []
    if sub == b"RESET":
        return 0
    if sub == b"HISTOGRAM":
        return Map({})
    if sub == b"GRAPH":
        return ReplyError(f"ERR No samples available for event '{argv[2].decode(errors='replace')}'")
    if sub == b"DOCTOR":
        return (b"Dave, no latency spike was observed during the lifetime of this instance, "
                b"awesome! Latency events are not recorded by a workbench node "
                b"(latency-monitor-threshold is accepted and ignored).\n")
    if sub == b"HELP":
        return LATENCY_HELP
    return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                      "Try LATENCY HELP.")


LATENCY_HELP = [
    b"LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DOCTOR", b"    Return a human readable latency analysis report.",
    b"GRAPH <event>", b"    Return an ASCII latency graph for the <event> class.",
    b"HISTORY <event>", b"    Return time-latency samples for the <event> class.",
    b"LATEST", b"    Return the latest latency samples for all events.",
    b"RESET [<event> ...]", b"    Reset latency data of one or more <event> classes.",
    b"    (default: reset all data for all event classes)",
    b"HISTOGRAM [COMMAND ...]",
    b"    Return a cumulative distribution of latencies in the format of a histogram for "
    b"the specified command names.",
    b"    If no commands are specified then all histograms are replied.",
    b"HELP", b"    Prints this help."]


# -- SLOWLOG --------------------------------------------------------------------------------
SLOWLOG_MAX_ARGC = 32
SLOWLOG_MAX_STRING = 128
_NOT_LOGGED = frozenset({"EXEC", "AUTH", "HELLO", "MULTI"})   # Valkey's skip-slowlog/redacted


class Slowlog:
    """The last ``slowlog-max-len`` commands slower than ``slowlog-log-slower-than``."""

    def __init__(self):
        self.entries: deque = deque()      # newest first
        self.next_id = 0

    def record(self, server, conn, spec, argv, micros: int) -> None:
        if spec.name in _NOT_LOGGED:
            return
        limit = server.config["slowlog-max-len"]
        self.entries.appendleft([self.next_id, int(time.time()), micros, trimmed(argv),
                                 getattr(conn, "addr", "").encode(),
                                 getattr(conn, "name", b"")])
        self.next_id += 1
        while len(self.entries) > limit:
            self.entries.pop()


def trimmed(argv: list) -> list:
    """The arguments as Valkey logs them: at most 32 (the last says how many more) and at
    most 128 bytes each (the rest says how many bytes more)."""
    shown = argv if len(argv) <= SLOWLOG_MAX_ARGC else argv[:SLOWLOG_MAX_ARGC - 1]
    out = [a if len(a) <= SLOWLOG_MAX_STRING
           else a[:SLOWLOG_MAX_STRING] + b"... (%d more bytes)" % (len(a) - SLOWLOG_MAX_STRING)
           for a in shown]
    if len(argv) > SLOWLOG_MAX_ARGC:
        out.append(b"... (%d more arguments)" % (len(argv) - SLOWLOG_MAX_ARGC + 1))
    return out


def slow_log(server, conn, spec, argv, started_ns: int) -> None:
    """After a command that started at ``started_ns`` (``monotonic_ns``): log it if it
    took at least ``slowlog-log-slower-than`` microseconds."""
    micros = (time.monotonic_ns() - started_ns) // 1000
    threshold = server.config["slowlog-log-slower-than"]      # the command may have set it
    if 0 <= threshold <= micros:
        server.slowlog.record(server, conn, spec, argv, micros)


@handles("SLOWLOG", -2, "", group="server", since="2.2.12")
def slowlog(server, conn, argv):
    """The slow log: GET [count], LEN, RESET."""
    sub = argv[1].upper()
    log = server.slowlog
    if sub == b"GET" and len(argv) <= 3:
        count = 10
        if len(argv) == 3:
            count = parse_int(argv[2])
            if count is None or count < -1:
                return ReplyError("ERR count should be greater than or equal to -1")
        entries = list(log.entries) if count == -1 else list(log.entries)[:count]
        return [list(e) for e in entries]
    fixed = (b"LEN", b"RESET", b"HELP")
    if sub in fixed and len(argv) != 2:
        return ReplyError(f"ERR wrong number of arguments for 'slowlog|{sub.decode().lower()}' "
                          "command")
    if sub == b"LEN":
        return len(log.entries)
    if sub == b"RESET":
        log.entries.clear()
        return OK
    if sub == b"HELP":
        return SLOWLOG_HELP
    if sub == b"GET":
        return ReplyError("ERR unknown subcommand or wrong number of arguments for "
                          f"'{argv[1].decode(errors='replace')}'. Try SLOWLOG HELP.")
    return ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                      "Try SLOWLOG HELP.")


SLOWLOG_HELP = [
    b"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"GET [<count>]",
    b"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    b"    Entries are made of:",
    b"    id, timestamp, time in microseconds, arguments array, client IP and port,",
    b"    client name",
    b"LEN", b"    Return the length of the slowlog.",
    b"RESET", b"    Reset the slowlog.",
    b"HELP", b"    Prints this help."]
