"""The event log of a viewer: each cluster event as one line in the domain's words.

:func:`describe` says what an event means (``None``: not worth a line), :func:`log_line`
stamps it with the event's time, and :func:`render_log` draws the newest line first, so
the latest news is in sight without scrolling. The control panel and the sync panel
both keep their log this way; each chooses which events it logs.
"""

from __future__ import annotations

import html
import time


def describe(event) -> str | None:
    """One line of the log for an event, in the domain's words (``None``: not shown)."""
    kind = event.kind
    if kind == "Partitioned":
        if event.one_way:
            return "one-way cut: " + ", ".join(f"what {src} sends to {dst} is lost"
                                               for src, dst in event.one_way)
        return "network partitioned: " + " | ".join(
            "[" + ", ".join(group) + "]" for group in event.groups)
    if kind == "Healed":
        return "network healed: every node reaches every other again"
    if kind == "PrimaryDown":
        if event.objective:
            return f"a majority of monitors agree {event.primary} is down (ODOWN)"
        return f"{event.node}'s monitor cannot reach {event.primary} (SDOWN)"
    if kind == "FailoverBegun":
        return f"failover begun: {event.node} leads, epoch {event.epoch}"
    if kind == "FailoverDone":
        return (f"failover done: {event.new_primary} is the primary of epoch {event.epoch} "
                f"(was {event.old_primary})")
    if kind == "RoleChanged":
        if event.role == "master":
            return f"{event.node} is now a primary"
        if event.primary is None:
            return f"{event.node} is no primary any more"
        return f"{event.node} now replicates from {event.primary}"
    if kind == "ReplicaLinkChanged":
        if event.full_sync:
            return f"{event.node} full resync from {event.primary}: its own data is replaced"
        if event.status == "down":
            return f"{event.node} lost its link to {event.primary}"
        return None
    if kind == "NodeKilled":
        if event.power_loss:
            return f"{event.node} lost power: {event.lost_bytes} un-fsynced bytes gone"
        return f"{event.node} crashed (killed)"
    if kind == "NodeRestarted":
        return f"{event.node} restarted: replayed {event.loaded_commands} commands from disk"
    if kind == "WriteRejected":
        return f"{event.node} rejected {event.command}: {event.error}"
    if kind == "EligibilityGranted":
        return (f"{event.node} now waits for {event.replica}: eligible (caught up at offset "
                f"{event.offset})")
    if kind == "EligibilityRevoked":
        if event.node == event.replica:
            return (f"{event.replica} holds no grant any more ({event.reason}): it cannot be "
                    "promoted until its primary grants it again")
        how = ("recorded by a majority of monitors" if event.agreed
               else "WITHOUT the monitors' agreement")
        return (f"{event.node} stopped waiting for {event.replica} ({event.reason}), "
                f"{how}: it is ineligible")
    if kind == "WriteTimedOut":
        return (f"{event.node}: a write (offset {event.offset}) was not acknowledged in time: "
                f"NOREPLICAS, outcome unknown (committed offset {event.committed_offset})")
    if kind == "RaftRoleChanged":
        if event.role == "leader":
            return f"{event.node} won the election: leader of term {event.term}"
        if event.role == "candidate":
            return f"{event.node} stands for election in term {event.term}"
        if event.role == "learner":
            return (f"{event.node} is a learner: it copies {event.leader or 'the leader'}'s "
                    "log, without a vote")
        return None                         # followers: the leader's line says it
    if kind == "RaftSteppedDown":
        return (f"{event.node} stepped down (term {event.term}): {event.discarded_entries} "
                f"uncommitted entries rolled back in {event.rollback_ms:.1f} ms, "
                f"{event.disconnected_clients} held clients disconnected (outcome unknown)")
    if kind == "RaftMembershipChanged":
        voters = ", ".join(event.voters)
        if event.action == "add_learner":
            return f"membership: {event.member} joined as a learner (voters still {voters})"
        if event.action == "promote":
            return (f"membership: {event.member} promoted to voter: voters {voters}, a majority "
                    f"is {len(event.voters) // 2 + 1}")
        return f"membership: {event.member} removed: voters {voters}"
    if kind == "RaftSnapshotInstalled":
        return (f"{event.node} installed the leader's snapshot (up to index {event.index}, "
                f"{event.bytes} bytes) instead of replaying the log")
    if kind == "Note":
        return event.text
    if kind == "ClusterClosed":
        return f"cluster closed: {', '.join(event.nodes)} shut down on purpose (not a crash)"
    if kind == "EventsDropped":
        return f"({event.count} events dropped: the log fell behind)"
    return None


def log_line(event) -> str | None:
    """The log's line for ``event``: its wall-clock time to the millisecond, then what
    :func:`describe` says (``None`` if that is nothing)."""
    text = describe(event)
    if text is None:
        return None
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    return f"{stamp}.{int(event.time * 1000) % 1000:03d}  {text}"


def render_log(lines: list[str], title: str, *, empty: str, max_height: str) -> str:
    """The log as HTML: ``title``, then ``lines`` newest first (``empty`` if none)."""
    body = "\n".join(html.escape(line) for line in reversed(lines))
    return ("<div style='font-family:monospace;font-size:12px;line-height:1.4;"
            f"white-space:pre;background:#f7f7f7;padding:4px 6px;max-height:{max_height};"
            f"overflow:auto'><b>{title}</b>\n"
            f"{body or empty}</div>")
