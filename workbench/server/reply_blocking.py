"""Observability and testing levers of the commit gate, with the names of Valkey's proposal.

``INFO reply_blocking`` (also shown under ``INFO debug``, where Valkey's tests read it)::

    reply_blocking_enabled:1
    reply_blocking_read_blocked_count:<reads whose reply was held>
    reply_blocking_write_blocked_count:<writes whose reply was held>
    reply_blocking_clients_waiting_ack:<clients with held replies now>
    reply_blocking_uncommitted_keys:<keys changed but not yet durable>
    reply_blocking_previous_acked_offset:<the committed offset>
    reply_blocking_primary_repl_offset:<the replication offset>

and the workbench's own: held bytes, the group-commit counters, and the back-pressure
budget -- ``reply_blocking_pinned_bytes`` (what not-yet-durable writes keep in memory
now), ``..._pinned_peak_bytes`` (the most seen), ``..._max_pinned_bytes`` (the budget),
``..._held_back_clients`` (clients not being read now) and ``..._held_back_count``.

``DEBUG reply-blocking-pause aof`` freezes the durable offset the gate sees (fsyncs go
on) and ``DEBUG reply-blocking-resume aof`` lets it catch up: the lever a test or a
notebook uses to watch replies wait.
"""

from __future__ import annotations

from ..resp import OK, ReplyError
from . import gating
from .commands_admin import DEBUG_HOOKS, EXTRA_SECTIONS


def info_lines(server) -> list[str]:
    gate = server.gate
    lines = ["# Reply_blocking", f"reply_blocking_enabled:{1 if gate is not None else 0}"]
    if gate is None:
        return lines
    return lines + [
        f"reply_blocking_read_blocked_count:{gate.read_blocked_count}",
        f"reply_blocking_write_blocked_count:{gate.write_blocked_count}",
        f"reply_blocking_clients_waiting_ack:{len(gate.waiting)}",
        f"reply_blocking_uncommitted_keys:{len(gate.uncommitted)}",
        f"reply_blocking_previous_acked_offset:{gate.committed_offset}",
        f"reply_blocking_primary_repl_offset:{server.repl.offset}",
        f"reply_blocking_held_bytes:{sum(c.held.held_bytes for c in gate.waiting)}",
        f"reply_blocking_provider_aof_paused:"
        f"{1 if server.aof_provider is not None and server.aof_provider.paused else 0}",
        f"reply_blocking_provider_aof_offset:"
        f"{server.aof_provider.durable_offset if server.aof_provider is not None else -1}",
        f"reply_blocking_provider_replicas_offset:"
        f"{server.replica_provider.durable_offset if server.replica_provider is not None else -1}",
        f"reply_blocking_write_timeouts:{server.write_timeouts}",
        f"reply_blocking_group_commit_batches:{server.write_behind.batches if server.write_behind else 0}",
        f"reply_blocking_group_commit_writes:{server.write_behind.batched_writes if server.write_behind else 0}",
        f"reply_blocking_pinned_bytes:{gating.pinned_bytes(server)}",
        f"reply_blocking_pinned_peak_bytes:{server.pinned_peak}",
        f"reply_blocking_max_pinned_bytes:{server.config['reply-blocking-max-pinned-bytes']}",
        f"reply_blocking_held_back_clients:{len(server.held_back)}",
        f"reply_blocking_held_back_count:{server.held_back_count}",
    ]


def _provider(server, argv):
    if len(argv) != 3:
        return None, ReplyError("ERR wrong number of arguments for 'debug|reply-blocking' command")
    name = argv[2].lower()
    if name != b"aof" or server.aof_provider is None:
        return None, ReplyError(f"ERR No such reply-blocking provider "
                                f"'{argv[2].decode(errors='replace')}'")
    return server.aof_provider, None


def pause(server, conn, argv):
    provider, error = _provider(server, argv)
    if error:
        return error
    provider.pause()
    server.log(f"Paused AOF reply-blocking (frozen at offset {provider.durable_offset})")
    return OK


def resume(server, conn, argv):
    provider, error = _provider(server, argv)
    if error:
        return error
    provider.resume()
    server.log("Resumed AOF reply-blocking")
    gating.progress(server)
    return OK


EXTRA_SECTIONS["reply_blocking"] = info_lines
EXTRA_SECTIONS["debug"] = info_lines
DEBUG_HOOKS[b"reply-blocking-pause"] = pause
DEBUG_HOOKS[b"reply-blocking-resume"] = resume
