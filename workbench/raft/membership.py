"""Single-server membership changes (dissertation chapter 4): the rules a leader checks.

Theory of operation
-------------------
Adding or removing one voter at a time means every majority of the old configuration
shares a server with every majority of the new one, so the cluster can never split into
two majorities that decide independently (§4.1). A change is a CONFIG entry; it takes
effect on each server as soon as that server has it in its log (``RaftLog.membership``).

The leader accepts a change only if:

* it is meaningful: ``add_learner`` a non-member, ``promote`` a learner, ``remove`` a
  member (never the last voter);
* the previous change is committed -- one change in flight at a time;
* the leader has committed an entry of its own term. Without this rule (the fix Ongaro
  posted to raft-dev in 2015), a change could be appended next to an uncommitted change
  of an earlier leader, and two leaders, each elected under a different one of those
  configurations, could both commit.

New servers join as **learners**: they receive entries (and snapshots) but never count
in a quorum, so a slow new server cannot stall commits while it catches up (§4.2.1);
``promote`` makes it a voter once it has. When the leader removes itself (§4.2.2) it
goes on replicating but counts only the new configuration's voters, which exclude it;
once the entry commits it steps down, and -- not being a voter in its own
configuration -- never campaigns again.
"""

from __future__ import annotations

from .types import ConfigChange, Membership


def check_change(change: ConfigChange, membership: Membership, *,
                 previous_committed: bool, term_committed: bool) -> None:
    """Raise ValueError if the leader must not propose ``change`` now."""
    node = change.node
    if change.action not in ConfigChange.ACTIONS:
        raise ValueError(f"unknown membership change {change.action!r}")
    if change.action == "add_learner" and node in membership.members:
        raise ValueError(f"{node} is already a member")
    if change.action == "promote" and node not in membership.learners:
        raise ValueError(f"{node} is not a learner")
    if change.action == "remove":
        if node not in membership.members:
            raise ValueError(f"{node} is not a member")
        if membership.voters == {node}:
            raise ValueError(f"{node} is the last voter")
    if not previous_committed:
        raise ValueError("the previous membership change is not committed yet")
    if not term_committed:
        raise ValueError("the leader has not committed an entry of its term yet")
