"""The facade users touch: start a cluster of real nodes, break it, read its state.

::

    import workbench as wb

    with wb.Cluster(mode="async", nodes=3) as c:
        r = c.client()                 # redis.Redis connected to the primary
        r.set("k", "v")
        c.partition(["n1"], ["n2", "n3"])
        ...
        c.heal()

All nodes run on one background event-loop thread (see :mod:`workbench.runtime`), so
synchronous code -- a notebook cell, a test -- can use ``redis-py`` against them freely.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .consensus import membership as raft_membership
from .events import ClusterClosed, EventBus, NodeAdded, NodeRemoved
from .failover.monitor import Monitor
from .faults.network import Network
from .mqtt.topics import check_name
from .node import Node
from .recording import Recording, running_in_kernel
from .runtime import BackgroundLoop
from .server.config import validate_overrides

# What every node of a cluster sets: the DEBUG levers, for local clients (all of ours
# are: nodes listen on 127.0.0.1 only). A bare node keeps Valkey's default, no DEBUG.
CLUSTER_NODE_CONFIGS = {"enable-debug-command": "local"}
# What each mode sets on every node; the user's keywords come on top.
MODE_CONFIGS = {
    "async": {"appendonly": "yes", "appendfsync": "everysec"},
    "aof": {"appendonly": "yes", "appendfsync": "always", "aof-write-behind": "yes"},
    # in memory unless appendonly=True: then the fsynced AOF joins the replicas' acks
    "sync": {"durability-mode": "sync", "appendonly": "no", "appendfsync": "always",
             "aof-write-behind": "yes"},
    # the Raft log (fsynced on every node) is the durable record; no AOF beside it
    "raft": {"durability-mode": "raft", "appendonly": "no"},
}
# Modes whose promise holds for one node only. `aof`'s commit gate waits for the local
# fsync; replicas under it would be asynchronous, and a failover would erase writes the
# gate had acknowledged. Refusing is better than a mode name that promises more than it keeps.
SINGLE_NODE_MODES = ("aof",)
SINGLE_NODE_ADVICE = (
    "mode 'aof' is a single node: its commit gate waits for the local fsync only, so "
    "replicas under it would be asynchronous and a failover would erase acknowledged "
    "writes. For replicas that share the promise use mode 'sync' or 'raft'; for "
    "Valkey's own 'AOF plus asynchronous replicas' use mode='async', appendfsync='always'")
CLUSTER_KEYWORDS = ("down_after_ms", "record", "name", "mqtt", "mqtt_control")


def check_raft_timing(overrides: dict) -> None:
    """A heartbeat must come well inside the election timeout, or followers would keep
    electing new leaders while the old one is healthy."""
    from .server.config import Config
    config = Config(overrides)
    heartbeat, election = config["heartbeat-ms"], config["election-timeout-ms"]
    if heartbeat * 2 > election:
        raise ValueError(f"heartbeat_ms={heartbeat} must be at most half of "
                         f"election_timeout_ms={election}")


def check_size(mode: str, nodes: int | None) -> int:
    """The number of nodes ``mode`` runs with (``None``: its usual size); ValueError for
    an unknown mode or a size the mode cannot keep its promise with."""
    if mode not in MODE_CONFIGS:
        known = ", ".join(repr(m) for m in MODE_CONFIGS)
        raise ValueError(f"unknown mode {mode!r}; accepted: {known}")
    if nodes is None:
        nodes = 1 if mode in SINGLE_NODE_MODES else 3
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= 9:
        raise ValueError(f"nodes must be an integer from 1 to 9, not {nodes!r}")
    if mode in SINGLE_NODE_MODES and nodes != 1:
        raise ValueError(f"nodes={nodes}: {SINGLE_NODE_ADVICE}")
    if mode == "sync" and nodes < 2:
        raise ValueError(f"nodes={nodes}: mode 'sync' replicates synchronously, so it needs "
                         "a primary and at least one replica (nodes=2 or more; 3 survives "
                         "the loss of any one node)")
    return nodes


class Cluster:
    """``nodes`` real servers in ``mode``; ``data_dir=None`` uses a fresh temp dir.

    ``nodes=None`` takes the mode's usual size: one node for ``aof``, three otherwise.
    ``record=True`` keeps the event stream in ``cluster.recording`` for a replay
    (``viz.Replay``); ``None`` records inside a notebook's kernel only.
    """

    def __init__(self, mode: str = "async", nodes: int | None = None, data_dir: str | None = None, *,
                 down_after_ms: int = 1000, record: bool | None = None, name: str | None = None,
                 mqtt=None, mqtt_control=None, **configs):
        nodes = check_size(mode, nodes)
        if int(down_after_ms) < 100:
            raise ValueError("down_after_ms must be at least 100")
        try:
            overrides = validate_overrides(configs)
        except ValueError as err:
            raise ValueError(f"{err}; cluster keywords: {', '.join(CLUSTER_KEYWORDS)}") from None
        if mode == "raft":
            check_raft_timing(overrides)
            for managed in ("shard-nodes", "raft-port"):
                if managed in overrides:
                    raise ValueError(f"{managed.replace('-', '_')}: the cluster sets it for "
                                     "each node itself")
        self.mode = mode
        self.name = f"{mode}-{secrets.token_hex(2)}" if name is None else check_name(name)
        if mqtt_control is not None and not mqtt:
            raise ValueError("mqtt_control needs mqtt=True or mqtt='mqtt://host:port'")
        self.down_after_ms = int(down_after_ms)
        self.monitored = nodes > 1 and mode != "raft"    # Raft elects its own leaders
        self._own_dir = data_dir is None
        self.data_dir = tempfile.mkdtemp(prefix="workbench-") if data_dir is None else data_dir
        self.events = EventBus()
        self.runtime = BackgroundLoop(name=f"workbench-{mode}")
        self.names = [f"n{i + 1}" for i in range(nodes)]
        node_configs = {**CLUSTER_NODE_CONFIGS, **MODE_CONFIGS[mode], **overrides}
        if node_configs.get("requirepass"):     # replicas and monitors use the same password
            node_configs.setdefault("masterauth", node_configs["requirepass"])
        self.password = node_configs.get("requirepass") or None   # what our own clients send
        self._node_configs = node_configs        # what add_node gives a new node too
        self.nodes = [Node(self, n, os.path.join(self.data_dir, n), node_configs)
                      for n in self.names]
        # Before the first node starts, so a replay sees it start. None: on in notebooks.
        keep = running_in_kernel() if record is None else bool(record)
        self.recording: Recording | None = Recording.of(self) if keep else None
        self.network: Network | None = None
        self._closed = False
        self.mqtt = None        # the MQTT bridge: events out, viewers' requests in
        try:
            if mqtt:            # before the first node starts, so viewers see it start
                from .mqtt.bridge import Bridge
                self.mqtt = Bridge.for_cluster(self, mqtt, mqtt_control)
            self.runtime.run(self._start(), timeout=30)
            self.wait_until(self._replicas_online, timeout=15,
                            what="replicas to finish their first sync")
        except BaseException:
            self.close()
            raise

    async def _start(self) -> None:
        if self.mode == "raft":
            await self._start_raft()
            return
        self.network = Network(self.names, lambda name: self.node(name).port, self.events)
        await self.network.start()
        first = self.nodes[0]
        await first._start()
        first.save_role(("primary",))
        for node in self.nodes[1:]:
            await node._start(replica_of=first.name)

    async def _start_raft(self) -> None:
        """Reserve every node's Raft port, tell each the whole shard (``shard-nodes``), and
        start them all: the first election follows (raft/election.py)."""
        for node in self.nodes:
            node.reserve_raft_port()
        shard = ",".join(f"{n.name}=127.0.0.1:{n.raft_port}" for n in self.nodes)
        for node in self.nodes:
            node.config.set("shard-nodes", shard, initial=True)
        self._node_configs = {**self._node_configs, "shard-nodes": shard}
        self.network = Network(self.names, lambda name: self.node(name).port, self.events,
                               raft_port_of=lambda name: self.node(name).raft_port)
        await self.network.start()
        for node in self.nodes:
            await node._start()

    def _replicas_online(self) -> bool:
        """Every replica synced (and in sync mode granted eligibility); in raft, a leader
        serves and every node holds its whole log."""
        if self.mode == "raft":
            return self._raft_settled()
        primary = self.nodes[0].server
        if primary is None:
            return False
        if primary.eligibility is not None:
            return len(primary.eligibility.eligible) == len(self.nodes) - 1
        return len([r for r in primary.repl.replicas
                    if r.state == "online"]) == len(self.nodes) - 1

    # -- context manager and teardown -------------------------------------------------
    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every node and the loop; remove the data dir if the cluster made it."""
        if self._closed:
            return
        self._closed = True
        # Closing is not a crash: subscribers hear one ClusterClosed, delivered before the
        # bus stops, and nothing of the nodes stopping afterwards.
        self.events.publish(ClusterClosed("cluster", nodes=tuple(self.names)))
        self.events.close()
        if self.mqtt is not None:   # its last state says closed; an embedded broker stops
            self.mqtt.close()

        async def stop_all():
            for node in self.nodes:
                await node._kill(False)
            if self.network is not None:
                await self.network.close()

        try:
            self.runtime.run(stop_all(), timeout=15)
        except Exception:
            pass
        self.runtime.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- finding nodes ----------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r}; nodes are {self.names}")

    def _resolve(self, node) -> Node:
        return self.node(node) if isinstance(node, str) else node

    def current_primary(self) -> Node | None:
        """The node that serves writes now, without waiting (``None`` if unclear).

        During a split brain two nodes may both accept writes; the one the highest
        monitor configuration names is the primary the cluster will keep.
        """
        return self.runtime.call(self._primary_on_loop)

    def _raft_settled(self) -> bool:
        leader = self._primary_on_loop()
        if leader is None:
            return False
        raft = leader.server.raft
        return all(n.server is not None and n.server.raft.applied_index >= raft.core.commit_index
                   for n in self.nodes)

    def _primary_on_loop(self) -> Node | None:
        primaries = [n for n in self.nodes if n.role == "primary"]
        if self.mode == "raft":
            # two leaders can both believe they lead (an old one cut off, in an older
            # term): the newest term's is the one the shard follows
            return max(primaries, key=lambda n: n.server.raft.core.term, default=None)
        name = self._configured_primary()
        if name is not None and self.node(name) in primaries:
            return self.node(name)
        return primaries[0] if len(primaries) == 1 else None

    def monitor_config(self) -> dict | None:
        """The newest configuration the running failover monitors hold: ``epoch``,
        ``primary`` and (``sync``) the ``eligible`` set they agreed on; None without
        monitors."""
        def newest():
            configs = [n.monitor.snapshot() for n in self.nodes if n.monitor is not None]
            return max(configs, key=lambda c: (c["epoch"], c["primary"]), default=None)
        return self.runtime.call(newest)

    def save_recording(self, path) -> str:
        """Write the cluster's recording (``Cluster(record=True)``) as JSON lines; return path."""
        if self.recording is None:
            raise RuntimeError("this cluster records nothing: start it with record=True")
        self.recording.settle()
        return self.recording.save(path)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: its nodes are gone and its loop has stopped."""
        return self._closed

    def _configured_primary(self) -> str | None:
        """The primary the newest monitor configuration names (None without monitors)."""
        return max(((n.monitor.epoch, n.monitor.primary) for n in self.nodes
                    if n.monitor is not None), default=(0, None))[1]

    def primary(self, timeout: float = 5) -> Node:
        """The node serving writes now; waits up to ``timeout`` seconds for one."""
        found = []

        def check():
            p = self._primary_on_loop()
            if p is not None:
                found.append(p)
                return True
            return False
        self.wait_until(check, timeout=timeout, what="a primary")
        return found[-1]

    def client(self, node=None, **kwargs) -> redis.Redis:
        """A ``redis.Redis`` to ``node`` (default: the primary) that fails fast, and
        authenticates with the cluster's ``requirepass`` if it has one."""
        target = self.primary() if node is None else self._resolve(node)
        options = dict(host="127.0.0.1", port=target.port, password=self.password, socket_timeout=5,
                       socket_connect_timeout=5, retry=Retry(NoBackoff(), 0),
                       decode_responses=True)
        options.update(kwargs)
        return redis.Redis(**options)

    # -- membership -----------------------------------------------------------------------
    def add_node(self, timeout: float = 30) -> Node:
        """Start one more node, a replica of the current primary (``async``, ``sync``);
        in ``raft`` a learner that catches up and is then promoted to voter.

        It takes the next name never used in this data dir (``n4``, ``n5`` ...), gets link
        proxies to every node and a failover monitor that starts from the configuration
        the other monitors hold; every monitor learns the new member. In ``sync`` the new
        replica starts ineligible and its monitor does not vote: the primary grants it
        eligibility once it has caught up, and the agreed grant makes it a voting member
        (the quorum grows then). Returns once the replica is online (in ``sync``: eligible
        and counted by every monitor); ``TimeoutError`` after ``timeout`` seconds, the
        node staying a member.
        """
        self._check_membership_change("add a node")
        if self.mode == "raft":       # learner, catch-up, voter: consensus/membership.py
            return self.runtime.run(raft_membership.add_node(self, timeout), timeout=timeout + 5)
        deadline = time.monotonic() + timeout
        node = self.runtime.run(self._add_node(), timeout=timeout)
        what = (f"{node.name} to be granted eligibility and counted by every monitor"
                if self.mode == "sync" else f"{node.name} to finish its first sync")
        self.wait_until(lambda: self._joined(node), what=what,
                        timeout=max(0.0, deadline - time.monotonic()))
        return node

    def remove_node(self, node, timeout: float = 15) -> None:
        """Take a replica out of the cluster, as Valkey's ``CLUSTER FORGET`` does.

        The primary stops counting it first: in ``sync`` its eligibility is revoked the
        agreed way (a majority of monitors records the smaller set; ``TimeoutError`` after
        ``timeout`` seconds if they cannot, the node staying a member). Then the node
        stops, every monitor forgets it, and it leaves ``nodes``, ``names`` and the
        network. Its data dir stays, and its name is not given to a later node.
        Refused (``ValueError``) for the primary, an unknown name, and in ``aof`` mode.
        In ``raft`` the leader may go: it hands leadership to the most up-to-date voter
        first; then the leader proposes the removal and the node stops once it commits.
        """
        self._check_membership_change("remove a node")
        name = node.name if isinstance(node, Node) else node
        if name not in self.names:
            raise ValueError(f"no node {name!r} to remove; nodes are {self.names}")
        if self.mode == "raft":
            self.runtime.run(raft_membership.remove_node(self, self.node(name), timeout),
                             timeout=timeout + 5)
            return
        if self.mode == "sync" and len(self.names) <= 2:
            raise ValueError(f"cannot remove {name}: mode 'sync' needs a primary and at least "
                             "one replica (add a node first)")
        self.runtime.call(self._refuse_primary, name)
        self.runtime.run(self._remove_node(self.node(name), timeout), timeout=timeout + 5)

    def _check_membership_change(self, what: str) -> None:
        if self._closed:
            raise RuntimeError("the cluster is closed")
        if self.mode in SINGLE_NODE_MODES:
            raise ValueError(f"cannot {what} in mode {self.mode!r}: {SINGLE_NODE_ADVICE}")

    def _refuse_primary(self, name: str) -> None:
        """The primary serving writes, or the one the monitors' configuration names,
        is never removed: its replicas and its clients would be left without one."""
        if name == self._configured_primary() or self.node(name).role == "primary":
            raise ValueError(f"cannot remove {name}: it is the primary. Fail over first "
                             f"(kill {name} or partition it away and wait for a new primary), "
                             "then remove it")

    async def _add_node(self) -> Node:
        primary = self._primary_on_loop()
        if primary is None:
            raise RuntimeError("no primary to replicate from right now (a failover in "
                               "progress?); try again once c.primary() answers")
        name = self._next_name()
        node = Node(self, name, os.path.join(self.data_dir, name), self._node_configs)
        monitors = [n.monitor for n in self.nodes if n.monitor is not None]
        source = max(monitors, key=lambda m: m.epoch, default=None)
        self.nodes.append(node)
        self.names.append(name)
        try:
            await self.network.add_node(name)
            if not self.monitored:            # a single async node gets its replica's company
                self.monitored = True
                for other in self.nodes[:-1]:
                    if other.server is not None:
                        other.monitor = Monitor(other, self.names,
                                                down_after_ms=self.down_after_ms)
                        other.monitor.start()
                monitors = []
            await node._start(replica_of=primary.name)
        except BaseException:
            await node._kill(False, removed=True)
            await self._forget(node)
            raise
        # From here to the end no await: the new monitor starts from the configuration
        # before its first round, and every monitor knows it in the same loop turn.
        voter = self.mode != "sync"
        if source is not None and node.monitor is not None:
            learners = set(source.learners) | (set() if voter else {name})
            node.monitor.join(source.epoch, source.primary, source.eligible, learners)
        for monitor in monitors:
            monitor.add_member(name, voter=voter)
        node.log(f"added to the cluster as a replica of {primary.name}"
                 + ("" if voter else " (ineligible, not voting until granted)"))
        self.events.publish(NodeAdded(name, port=node.port, primary=primary.name))
        return node

    def _joined(self, node: Node) -> bool:
        """The added replica is online (sync: eligible, and a voter for every monitor)."""
        server = node.server
        if server is None or server.link is None or server.link.status != "connected":
            return False
        if self.mode != "sync":
            return True
        primary = self._primary_on_loop()
        eligibility = primary.server.eligibility if primary is not None else None
        if eligibility is None or node.name not in eligibility.eligible:
            return False
        return all(node.name not in n.monitor.learners for n in self.nodes
                   if n.monitor is not None)

    async def _remove_node(self, node: Node, timeout: float) -> None:
        """Revoke (sync), stop and forget ``node``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        was_eligible = False
        while self.mode == "sync":
            self._refuse_primary(node.name)       # a failover meanwhile may have promoted it
            primary = self._primary_on_loop()
            eligibility = primary.server.eligibility if primary is not None else None
            if eligibility is not None and node.name not in eligibility.eligible:
                break
            if eligibility is not None:
                was_eligible = True
                eligibility.revoke(node.name, "removed")   # no-op while already revoking
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for the primary to stop counting "
                    f"{node.name}" + ("" if primary is not None else " (no primary)")
                    + ": its revocation needs a majority of monitors; it is still a member")
            await asyncio.sleep(0.02)
        # No await from the checks to the stop: the primary cannot grant the caught-up
        # replica eligibility again, nor a failover promote it, in between.
        self._refuse_primary(node.name)
        await node._kill(False, removed=True)
        await self._forget(node)
        node.log("removed from the cluster")
        self.events.publish(NodeRemoved(node.name, was_eligible=was_eligible))

    def _next_name(self) -> str:
        """The next ``n<i>`` never used in this data dir: a removed node's name stays its own."""
        index = 1
        while (f"n{index}" in self.names
               or os.path.exists(os.path.join(self.data_dir, f"n{index}"))):
            index += 1
        return f"n{index}"

    async def _forget(self, node: Node) -> None:
        """``node`` is no member any more: not for the monitors or the Raft peers, the
        cluster, the network."""
        for other in self.nodes:
            if other is node:
                continue
            if other.monitor is not None:
                other.monitor.remove_member(node.name)
            if other.server is not None and other.server.raft is not None:
                other.server.raft.transport.forget(node.name)
        if node in self.nodes:
            self.nodes.remove(node)
        if node.name in self.names:
            self.names.remove(node.name)
        await self.network.remove_node(node.name)

    # -- faults -------------------------------------------------------------------------
    def partition(self, *groups) -> None:
        """Cut node-to-node links between the groups (clients still reach every node).

        ``c.partition(["n1"], ["n2", "n3"])``; nodes not named form one more group.
        """
        names = [[self._resolve(n).name for n in g] for g in groups]
        self.runtime.call(self.network.partition, *names)

    def heal(self) -> None:
        self.runtime.call(self.network.heal)

    def cut(self, src, dst) -> None:
        """Silence one direction only: what ``src`` sends to ``dst`` is lost, what ``dst``
        sends to ``src`` still arrives (``heal()`` restores it). In ``raft`` mode this is a
        one-way partition of the Raft messages."""
        self.runtime.call(self.network.cut, self._resolve(src).name, self._resolve(dst).name)

    def raft_state(self) -> dict:
        """raft: each node's Raft state as plain data -- role, term, leader, commit,
        applied and last index, voters and learners, the log's last entries' terms, and
        on the leader each peer's match index; ``{"alive": False}`` for a node that is
        down."""
        if self._closed:
            raise RuntimeError("the cluster is closed")
        if self.mode != "raft":
            raise ValueError(f"raft_state() is for mode 'raft', not {self.mode!r}")

        def take():
            return {n.name: ({"alive": True, **n.server.raft.snapshot_for_viewers()}
                             if n.server is not None else {"alive": False})
                    for n in self.nodes}
        return self.runtime.call(take)

    # -- waiting on conditions ------------------------------------------------------------
    def wait_until(self, condition, *, timeout: float, what: str = "the condition",
                   interval: float = 0.02) -> None:
        """Poll ``condition()`` (run on the loop thread, so it may read node state)
        until it is true; raise ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.runtime.call(condition):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    # -- state for viewers --------------------------------------------------------------
    def snapshot(self) -> dict:
        """A plain-data picture of every node, taken consistently on the loop thread."""
        if self._closed:
            raise RuntimeError("the cluster is closed")
        def take():
            out = {}
            for n in self.nodes:
                s = n.server
                out[n.name] = {
                    "name": n.name, "port": n.port, "alive": s is not None, "role": n.role,
                    "offset": s.repl.offset if s else None,
                    "keys": s.keyspace.key_count() if s else None,
                    "aof_written": s.aof.written_size if s and s.aof else None,
                    "aof_fsynced": s.aof.fsynced_size if s and s.aof else None,
                    "link": s.link.status if s and s.link else None,
                    "primary": s.link.primary_name if s and s.link else None,
                    "epoch": n.monitor.epoch if n.monitor else None,
                    "monitor_primary": n.monitor.primary if n.monitor else None,
                }
                if s is not None and s.raft is not None:     # the Raft view, in these words
                    core = s.raft.core
                    follows = core.leader_id not in (None, n.name)
                    link = "following" if follows else None if s.raft.serving else "waiting"
                    out[n.name].update(
                        raft=True, link=link, epoch=core.term,
                        primary=core.leader_id if follows else "a leader it can trust",
                        monitor_primary=core.leader_id)
            out["_partition"] = self.network.groups if self.network else ()
            return out
        return self.runtime.call(take)
