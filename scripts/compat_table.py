"""The README's Valkey compatibility table, generated from the command table.

Valkey's command list (``scripts/valkey-commands.json``: ``COMMAND DOCS`` of a real
server, by group) is set beside the workbench's command table (``workbench.store.COMMANDS``
after the server commands registered). For a command that has subcommands (CLIENT,
OBJECT, SCRIPT ...), a fresh node is asked each one with a few placeholder arguments: a
subcommand counts as implemented unless every form is refused as an unknown subcommand.

    python scripts/compat_table.py           # print the table
    python scripts/compat_table.py --write   # replace it in README.md

``tests/test_compat_table.py`` fails when README.md no longer matches.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VALKEY_COMMANDS = ROOT / "scripts" / "valkey-commands.json"
START, END = "<!-- compat-table:start -->", "<!-- compat-table:end -->"

GROUP_ORDER = ["string", "list", "set", "sorted-set", "hash", "bitmap", "hyperloglog",
               "generic", "transactions", "scripting", "pubsub", "connection", "server",
               "stream", "geo", "cluster"]

# Why a command is not there: by command first, then by group.
WHY_COMMAND = {
    "acl": "one user: `requirepass` / `AUTH` (ACL rules are not modelled)",
    "bgsave": "no RDB snapshots: the AOF is the persistence the lessons are about",
    "save": "no RDB snapshots: the AOF is the persistence the lessons are about",
    "failover": "failover is the monitors' or Raft's decision, not a client command",
    "module": "no modules",
    "shutdown": "nodes are stopped through the Python API (`node.kill()`, `Cluster.close()`)",
    "migrate": "one shard: keys do not move between servers",
    "pfdebug": "internal debugging of Valkey's HLL encoding",
    "pfselftest": "internal test of Valkey's HLL encoding",
    "spublish": "sharded pub/sub needs cluster mode",
    "ssubscribe": "sharded pub/sub needs cluster mode",
    "sunsubscribe": "sharded pub/sub needs cluster mode",
    "asking": "cluster mode", "restore-asking": "cluster mode",
    "readonly": "cluster mode", "readwrite": "cluster mode",
    "cluster": "cluster mode: one shard, no slots",
}
WHY_GROUP = {
    "cluster": "cluster mode: a workbench cluster is one shard, no slots",
}


def valkey_commands() -> dict:
    return json.loads(VALKEY_COMMANDS.read_text())["commands"]


def our_commands() -> dict:
    import workbench.server  # noqa: F401  (registers the server commands)
    from workbench.store import COMMANDS
    return {name.decode(): spec for name, spec in COMMANDS.items()}


def probe_subcommands(wanted: dict) -> dict:
    """``{command: set of subcommands the node knows}``, asked of a fresh node."""
    import redis
    import workbench as wb
    from redis.connection import Connection

    known = {}
    with wb.Cluster(mode="async", nodes=1, record=False) as cluster:
        conn = Connection(port=cluster.nodes[0].port, socket_timeout=5)   # raw replies
        for command, subs in wanted.items():
            known[command] = set()
            for sub in subs:
                for extra in range(4):
                    conn.send_command(command, sub, *["x"] * extra)
                    try:
                        conn.read_response()
                    except redis.ResponseError as err:
                        if "unknown subcommand" in str(err).lower():
                            continue            # (or only the wrong number of arguments)
                    known[command].add(sub)
                    break
        conn.disconnect()
    return known


def _why(name: str, group: str) -> str:
    return WHY_COMMAND.get(name) or WHY_GROUP.get(group) or "not built yet"


def table() -> str:
    valkey, ours = valkey_commands(), our_commands()
    groups: dict[str, list[str]] = {}
    for name, doc in valkey.items():
        groups.setdefault(doc["group"], []).append(name)
    containers = {name: doc["subcommands"] for name, doc in valkey.items()
                  if doc["subcommands"] and name in ours}
    known_subs = probe_subcommands(containers)

    total = sum(len(names) for names in groups.values())
    have = sum(1 for name in valkey if name in ours)
    lines = [f"The node implements **{have} of Valkey's {total} commands**; by group:", "",
             "| group | commands | implemented | missing, and why |", "|---|---:|---:|---|"]
    for group in sorted(groups, key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER
                                               else len(GROUP_ORDER), g)):
        names = sorted(groups[group])
        missing = [n for n in names if n not in ours]
        reasons: dict[str, list[str]] = {}
        for n in missing:
            reasons.setdefault(_why(n, group), []).append(f"`{n.upper()}`")
        if len(missing) == len(names) and len(reasons) == 1:
            text = "all: " + next(iter(reasons))
        else:
            text = "; ".join(f"{', '.join(ns)}: {why}" for why, ns in reasons.items()) or "-"
        lines.append(f"| {group} | {len(names)} | {len(names) - len(missing)} | {text} |")

    lines += ["", "Commands with subcommands (those the node has):", "",
              "| command | subcommands | implemented | missing |", "|---|---:|---:|---|"]
    for name in sorted(containers):
        subs = containers[name]
        missing = [s for s in subs if s not in known_subs[name]]
        shown = ", ".join(f"`{s.upper()}`" for s in missing) or "-"
        lines.append(f"| {name.upper()} | {len(subs)} | {len(subs) - len(missing)} | {shown} |")

    extras = sorted(n for n in ours if n not in valkey)
    lines += ["", "Beyond Valkey: " + ", ".join(f"`{n.upper()}`" for n in extras)
              + " (Raft membership and the failover monitors' protocol)." if extras else ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_in_readme(text: str, readme: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _m: f"{START}\n{text}{END}", readme)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args(argv)
    text = table()
    if args.write:
        readme = ROOT / "README.md"
        readme.write_text(replace_in_readme(text, readme.read_text()))
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
