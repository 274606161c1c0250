"""The raft mode's commands: ``INFO raft``, the membership and leadership commands a
leader takes, and ``READONLY``/``READWRITE`` for follower reads.

Membership follows the design seed's workflows, one server at a time:

``RAFT.ADDLEARNER <node>``  the node joins as a learner: it receives the log but does
                            not vote, so a slow newcomer cannot stall commits
``RAFT.PROMOTE <node>``     a caught-up learner becomes a voter (the quorum grows)
``RAFT.REMOVE <node>``      a member leaves (the leader may remove itself: it steps
                            down once the change commits)
``RAFT.TRANSFER <node>``    hand leadership to a caught-up voter (a manual failover)

Each answers ``+OK`` once the change is *proposed*; ``INFO raft`` (``raft_voters``,
``raft_learners``) and the ``RaftMembershipChanged`` event show when it committed.
A node that is not the leader answers ``-NOTLEADER`` with the leader's address.
"""

from __future__ import annotations

from ..raft import NotLeader
from ..resp import OK, ReplyError
from .commands_admin import EXTRA_SECTIONS
from .registry import handles

NOT_RAFT = ReplyError("ERR This node does not run in raft mode (durability-mode raft)")


def _refusal(server) -> ReplyError | None:
    if server.raft is None:
        return NOT_RAFT
    return None


def _member(argv) -> str:
    return argv[1].decode(errors="replace")


def _not_leader(server) -> ReplyError:
    leader, port = server.raft.leader_address()
    where = f"the leader is {leader} (127.0.0.1:{port})" if leader else "no leader is known now"
    return ReplyError(f"NOTLEADER {server.name} is not the Raft leader; {where}")


def _on_leader(server, call):
    """Run ``call(raft)`` if this node leads: ``+OK``, or the error that says why not."""
    refusal = _refusal(server)
    if refusal is not None:
        return refusal
    try:
        call(server.raft)
    except NotLeader:
        return _not_leader(server)
    except ValueError as err:
        return ReplyError(f"ERR {err}")
    return OK


def _propose(server, action: str, argv):
    member = _member(argv)
    if action == "add_learner" and server.raft is not None \
            and not server.node.client_port_of(member):
        return ReplyError(f"ERR unknown node {member!r}: start it first (Cluster.add_node)")
    return _on_leader(server, lambda raft: raft.propose_change(action, member))


@handles("RAFT.ADDLEARNER", 2, "admin noscript", group="raft", since="workbench")
def add_learner(server, conn, argv):
    """Add a node to the shard as a learner (it replicates, does not vote)."""
    return _propose(server, "add_learner", argv)


@handles("RAFT.PROMOTE", 2, "admin noscript", group="raft", since="workbench")
def promote(server, conn, argv):
    """Make a learner a voter."""
    return _propose(server, "promote", argv)


@handles("RAFT.REMOVE", 2, "admin noscript", group="raft", since="workbench")
def remove(server, conn, argv):
    """Remove a member (learner or voter) from the shard."""
    return _propose(server, "remove", argv)


@handles("RAFT.TRANSFER", 2, "admin noscript", group="raft", since="workbench")
def transfer(server, conn, argv):
    """Hand leadership to a voter once its log is up to date (manual failover)."""
    return _on_leader(server, lambda raft: raft.transfer(_member(argv)))


@handles("READONLY", 1, "fast loading stale", group="cluster", since="3.0.0")
def readonly(server, conn, argv):
    """raft, with raft-read-mode follower: this connection may read a follower's applied
    (committed, maybe stale) state."""
    if server.raft is None:
        return ReplyError("ERR This instance has cluster support disabled")
    conn.readonly = True
    return OK


@handles("READWRITE", 1, "fast loading stale", group="cluster", since="3.0.0")
def readwrite(server, conn, argv):
    """Undo READONLY."""
    if server.raft is None:
        return ReplyError("ERR This instance has cluster support disabled")
    conn.readonly = False
    return OK


def info_lines(server) -> list[str]:
    if server.raft is None:
        return []
    return ["# Raft"] + [f"{key}:{value}" for key, value in server.raft.info().items()]


EXTRA_SECTIONS["raft"] = info_lines
