"""The raft mode's membership workflows, driven from the Cluster (the design seed's
"node addition" and "primary removal (manual failover)").

Adding a node: start it with the shard's bootstrap configuration (it is no member, so it
never campaigns), propose it as a **learner** -- it receives the log, or a snapshot if the
leader compacted past what it lacks, but does not count in any quorum, so a slow
newcomer cannot stall commits -- and once its log matches the leader's commit index,
propose its **promotion** to voter. Each step is one committed CONFIG entry: one server
at a time, so every old majority shares a server with every new one.

Removing a node: if it leads, it first hands leadership to the most up-to-date other
voter (TimeoutNow, no election timeout to wait out); then the leader proposes its
removal, and once that commits the node stops.

These coroutines run on the cluster's loop and wait by polling with a deadline: the
steps are driven by other nodes' messages, which arrive on the same loop.
"""

from __future__ import annotations

import asyncio
import os

from .. import events as ev
from ..raft import NotLeader

_POLL = 0.01


class MembershipTimeout(TimeoutError):
    pass


async def _until(condition, deadline: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    while not condition():
        if loop.time() >= deadline:
            raise MembershipTimeout(f"timed out waiting for {what}")
        await asyncio.sleep(_POLL)


def _leader(cluster):
    return cluster._primary_on_loop()


async def _propose(cluster, action: str, member: str, deadline: float) -> int:
    """Propose one step through whoever leads now (retrying while a leader is being
    elected or its term's first entry is not committed yet); wait until it commits."""
    loop = asyncio.get_running_loop()
    while True:
        leader = _leader(cluster)
        if leader is not None:
            try:
                index = leader.server.raft.propose_change(action, member)
                break
            except NotLeader:
                pass
            except ValueError as err:
                if "not committed yet" not in str(err) and "has not committed" not in str(err):
                    raise
        if loop.time() >= deadline:
            raise MembershipTimeout(f"timed out waiting for a leader to propose {action} {member}")
        await asyncio.sleep(_POLL)
    await _until(lambda: _holds(cluster, index), deadline, f"{action} {member} to commit")
    return index


def _holds(cluster, index: int) -> bool:
    leader = _leader(cluster)
    return leader is not None and leader.server.raft.core.commit_index >= index


async def add_node(cluster, timeout: float):
    from ..node import Node
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if _leader(cluster) is None:
        raise RuntimeError("no Raft leader right now (an election in progress?); try again "
                           "once c.primary() answers")
    name = cluster._next_name()
    node = Node(cluster, name, os.path.join(cluster.data_dir, name), cluster._node_configs)
    node.reserve_raft_port()
    cluster.nodes.append(node)
    cluster.names.append(name)
    try:
        await cluster.network.add_node(name)
        await node._start()
        cluster.events.publish(ev.NodeAdded(name, port=node.port, primary=_leader(cluster).name))
        await _propose(cluster, "add_learner", name, deadline)
        node.log("added to the shard as a learner; catching up")

        def caught_up() -> bool:
            leader = _leader(cluster)
            if leader is None or node.server is None:
                return False
            raft = leader.server.raft
            return raft.match_indexes().get(name, -1) >= raft.core.commit_index
        await _until(caught_up, deadline, f"learner {name} to catch up with the leader")
        await _propose(cluster, "promote", name, deadline)
        node.log("promoted to voter")
    except BaseException:
        await node._kill(False, removed=True)
        await cluster._forget(node)
        raise
    return node


async def remove_node(cluster, node, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    name = node.name
    while True:
        leader = _leader(cluster)
        if leader is not None and leader is not node:
            break
        if leader is node:
            raft = node.server.raft
            voters = raft.core.membership.voters - {name}
            if not voters:
                raise ValueError(f"cannot remove {name}: it is the shard's last voter")
            match = raft.match_indexes()
            target = max(voters, key=lambda peer: match.get(peer, -1))
            if raft.core.transferee is None:
                node.log(f"handing leadership to {target} before leaving")
                raft.transfer(target)
        if loop.time() >= deadline:
            raise MembershipTimeout(f"timed out handing leadership away from {name}")
        await asyncio.sleep(_POLL)
    await _propose(cluster, "remove", name, deadline)
    await node._kill(False, removed=True)
    await cluster._forget(node)
    node.log("removed from the shard")
    cluster.events.publish(ev.NodeRemoved(name, was_eligible=False))
