"""Node configuration: Valkey's names, types, defaults and error texts.

Every setting a node reads lives in :data:`SCHEMA`. ``CONFIG GET``/``CONFIG SET`` on the
wire and the ``Cluster(..., appendfsync="always")`` keywords in Python go through the
same validation, so a typo fails the same clear way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..store.glob import glob_match


class ConfigError(ValueError):
    """A bad configuration name or value; the message is Valkey's."""


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
          "g": 1000**3, "gb": 1024**3}


def _yes_no(raw: str) -> bool:
    v = raw.lower()
    if v not in ("yes", "no"):
        raise ConfigError("argument must be 'yes' or 'no'")
    return v == "yes"


def _integer(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            n = int(raw)
        except ValueError:
            raise ConfigError("argument couldn't be parsed into an integer") from None
        if not lo <= n <= hi:
            raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
        return n
    return parse


def _memory(lo: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip().lower()
        digits = text.rstrip("kmgb")
        unit = text[len(digits):]
        if not digits.isdigit() or unit not in _UNITS:
            raise ConfigError("argument must be a memory value")
        n = int(digits) * _UNITS[unit]
        if n < lo:
            raise ConfigError(f"argument must be a memory value of at least {lo}")
        return n
    return parse


def _enum(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        v = raw.lower()
        if v not in choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
        return v
    return parse


def _keyspace_events(raw: str) -> str:
    allowed = set("KEg$lshzxetmdnA")
    if any(c not in allowed for c in raw):
        raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    return raw


def _text(raw: str) -> str:
    return raw


def _shard_nodes(raw: str) -> tuple:
    """``n1=127.0.0.1:7001,n2=...`` -> ((name, host, port), ...)."""
    members = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, eq, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not (eq and colon and name and host and port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(f"shard-nodes entry {item!r} is not name=host:port")
        members.append((name, host, int(port)))
    if len({m[0] for m in members}) != len(members):
        raise ConfigError("shard-nodes names a node twice")
    return tuple(members)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], object]
    default: str
    mutable: bool = True
    doc: str = ""


def _render(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(f"{name}={host}:{port}" for name, host, port in value)
    return str(value)


SCHEMA: dict[str, Setting] = {s.name: s for s in [
    Setting("port", _integer(0, 65535), "0", mutable=False, doc="0 = any free port"),
    Setting("bind", _text, "127.0.0.1", mutable=False, doc="loopback only, always"),
    Setting("dir", _text, "", mutable=False),
    Setting("databases", _integer(1, 1000), "16", mutable=False),
    Setting("appendonly", _yes_no, "no"),
    Setting("appendfsync", _enum("always", "everysec", "no"), "everysec"),
    Setting("appendfilename", _text, "appendonly.aof", mutable=False),
    Setting("aof-load-truncated", _yes_no, "yes"),
    Setting("aof-write-behind", _yes_no, "no",
            doc="AOF write+fsync in a writer process behind the event loop; replies held until durable "
                "(Valkey's bio-aof-offload-enabled); only with appendfsync always"),
    Setting("reply-blocking-max-held-bytes", _memory(1024), "16mb",
            doc="a client whose held replies pass this stops being read until they drain"),
    Setting("reply-blocking-max-pinned-bytes", _memory(0), "64mb",
            doc="node-wide budget for what not-yet-durable writes keep in memory (held replies, "
                "uncommitted keys, unsynced AOF bytes); at it, clients whose replies are held stop "
                "being read until fsyncs free half of it; 0 = no limit"),
    Setting("save", _text, ""),
    Setting("requirepass", _text, ""),
    Setting("masterauth", _text, "",
            doc="the password a replica sends (AUTH) to its primary; monitors use it too"),
    Setting("enable-debug-command", _enum("no", "yes", "local"), "no", mutable=False,
            doc="DEBUG for nobody, everybody, or loopback clients only; a Cluster sets local"),
    Setting("notify-keyspace-events", _keyspace_events, ""),
    Setting("durability-mode", _enum("async", "sync", "raft"), "async", mutable=False,
            doc="sync: a write's reply (and reads of its keys) wait until every eligible "
                "replica acknowledged it (synchronous replication); raft: until a majority "
                "of the shard's Raft log holds it"),
    Setting("durability-replicas", _integer(0, 8), "1",
            doc="sync: eligible replicas a write needs (replication factor - 1); fewer: NOREPLICAS"),
    Setting("durability-timeout-ms", _integer(1, 2**31 - 1), "1000",
            doc="sync, raft: a held write not committed by then gets an indefinite NOREPLICAS error"),
    Setting("sync-unilateral-revoke", _yes_no, "no",
            doc="sync, a teaching lever (unsafe): stop waiting for a dropped replica at once, "
                "without the monitors agreeing first"),
    Setting("shard-nodes", _shard_nodes, "", mutable=False,
            doc="raft: the shard's bootstrap voters, name=host:port of each Raft peer port, "
                "comma separated (the design seed's list of addresses, with a name each)"),
    Setting("raft-port", _integer(0, 65535), "0", mutable=False,
            doc="raft: this node's Raft peer port (0 = any free port)"),
    Setting("election-timeout-ms", _integer(20, 60_000), "500", mutable=False,
            doc="raft: a follower that hears no leader for a random time in [this, 2 x this) "
                "starts an election"),
    Setting("heartbeat-ms", _integer(5, 10_000), "50", mutable=False,
            doc="raft: the leader's heartbeat period, and the Raft clock's tick"),
    Setting("raft-read-mode", _enum("leader", "readindex", "follower"), "leader",
            doc="raft: leader = reads on the leader under its lease, dirty keys held; "
                "readindex = a quorum round before each batch of reads (linearizable without "
                "clocks); follower = followers answer READONLY clients from their applied "
                "state (stale reads allowed)"),
    Setting("raft-snapshot-entries", _integer(10, 2**31 - 1), "10000",
            doc="raft: compact the log into a snapshot once it holds this many entries"),
    Setting("raft-bug-read-before-noop", _yes_no, "no", mutable=False,
            doc="raft, a teaching lever (unsafe): the leader answers reads from its own state "
                "without confirming it still leads (no entry of its term committed, no lease, "
                "no quorum round, no check-quorum step-down): stale reads, the class of "
                "Redis-Raft #19 (Jepsen 2020)"),
    Setting("raft-bug-definite-timeout", _yes_no, "no", mutable=False,
            doc="raft, a teaching lever (unsafe): a write that times out is answered with a "
                "definite NOREPLICAS error though it may still commit: aborted reads, the class "
                "of Redis-Raft #23"),
    Setting("min-replicas-to-write", _integer(0, 2**31 - 1), "0"),
    Setting("min-replicas-max-lag", _integer(0, 2**31 - 1), "10"),
    Setting("replica-read-only", _yes_no, "yes"),
    Setting("replica-serve-stale-data", _yes_no, "yes"),
    Setting("repl-timeout", _integer(1, 2**31 - 1), "60"),
    Setting("repl-ping-replica-period", _integer(1, 2**31 - 1), "10"),
    Setting("repl-backlog-size", _memory(16 * 1024), "1mb"),
    Setting("proto-max-bulk-len", _memory(1024 * 1024), "512mb"),
    Setting("client-query-buffer-limit", _memory(1024 * 1024), "1gb"),
    Setting("maxclients", _integer(1, 100_000), "10000"),
    Setting("hz", _integer(1, 500), "10"),
    # -- introspection (OBJECT, SLOWLOG, LATENCY, MEMORY): Valkey's names and defaults
    Setting("slowlog-log-slower-than", _integer(-1, 2**63 - 1), "10000",
            doc="SLOWLOG: log commands slower than this many microseconds; -1 off, 0 all"),
    Setting("slowlog-max-len", _integer(0, 2**63 - 1), "128"),
    Setting("latency-monitor-threshold", _integer(0, 2**63 - 1), "0",
            doc="accepted; no latency events are recorded (LATENCY answers as a quiet server)"),
    Setting("maxmemory", _memory(0), "0", doc="accepted; the workbench never evicts"),
    Setting("maxmemory-policy", _enum("volatile-lru", "volatile-lfu", "volatile-random",
                                      "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                                      "allkeys-random", "noeviction"), "noeviction",
            doc="accepted (the workbench never evicts); an LFU policy lets OBJECT FREQ answer"),
    # OBJECT ENCODING's thresholds (the compact encodings' limits)
    Setting("list-max-listpack-size", _integer(-2**31, 2**31 - 1), "-2"),
    Setting("set-max-intset-entries", _integer(0, 2**63 - 1), "512"),
    Setting("set-max-listpack-entries", _integer(0, 2**63 - 1), "128"),
    Setting("set-max-listpack-value", _integer(0, 2**63 - 1), "64"),
    Setting("hash-max-listpack-entries", _integer(0, 2**63 - 1), "512"),
    Setting("hash-max-listpack-value", _integer(0, 2**63 - 1), "64"),
    Setting("zset-max-listpack-entries", _integer(0, 2**63 - 1), "128"),
    Setting("zset-max-listpack-value", _integer(0, 2**63 - 1), "64"),
    # scripting
    Setting("busy-reply-threshold", _integer(0, 2**63 - 1), "5000",
            doc="a script or function running longer (ms) is stopped with an error; 0: never"),
]}

# Older names Valkey still accepts for a setting (CONFIG GET answers under both).
ALIASES: dict[str, str] = {
    "list-max-ziplist-size": "list-max-listpack-size",
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "lua-time-limit": "busy-reply-threshold",
}


class Config:
    """One node's live settings (values already parsed to Python types)."""

    def __init__(self, overrides: dict[str, str] | None = None):
        self._values: dict[str, object] = {}
        for name, setting in SCHEMA.items():
            self._values[name] = setting.parse(setting.default)
        for name, raw in (overrides or {}).items():
            self.set(name, raw, initial=True)

    def __getitem__(self, name: str):
        return self._values[name]

    def set(self, name: str, raw, *, initial: bool = False) -> None:
        setting = SCHEMA.get(ALIASES.get(name.lower(), name.lower()))
        if setting is None:
            raise ConfigError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        if not setting.mutable and not initial:
            raise ConfigError(f"CONFIG SET failed (possibly related to argument '{name}') - "
                              "can't set immutable config")
        if isinstance(raw, bool):
            raw = "yes" if raw else "no"
        try:
            value = setting.parse(str(raw))
        except ConfigError as err:
            raise ConfigError(f"CONFIG SET failed (possibly related to argument '{name}') - "
                              f"{err}") from None
        self._values[setting.name] = value

    def get(self, pattern: str) -> dict[str, str]:
        """Settings whose names match a glob ``pattern``, rendered as Valkey does."""
        pat = pattern.lower().encode()
        found = {name: _render(self._values[name]) for name in SCHEMA
                 if glob_match(pat, name.encode())}
        found.update({alias: _render(self._values[name]) for alias, name in ALIASES.items()
                      if glob_match(pat, alias.encode())})
        return found

    def as_dict(self) -> dict[str, str]:
        return {name: _render(v) for name, v in self._values.items()}


def config_name(keyword: str) -> str:
    """``appendfsync`` or ``min_replicas_to_write`` (a Python keyword) -> a setting name."""
    return keyword.replace("_", "-").lower()


def validate_overrides(configs: dict) -> dict[str, str]:
    """Check ``Cluster(**configs)`` keywords; a ``ValueError`` names the accepted ones."""
    out = {}
    for keyword, value in configs.items():
        name = config_name(keyword)
        if name not in SCHEMA:
            accepted = ", ".join(sorted(k.replace("-", "_") for k in SCHEMA))
            raise ValueError(f"unknown config {keyword!r}; accepted: {accepted}")
        Config().set(name, value, initial=True)   # raises ConfigError (a ValueError)
        out[name] = "yes" if value is True else "no" if value is False else str(value)
    return out
