"""A node of a cluster: a real server on a loopback port that can crash and come back.

:class:`Node` is what users and tests hold. It outlives its incarnations: ``kill()``
throws away the running :class:`~workbench.server.core.NodeServer` (memory, sockets,
tasks -- and with ``power_loss=True`` the file bytes that were never fsynced), and
``restart()`` builds a new one on the same port from what survived on disk.
"""

from __future__ import annotations

import json
import os

from . import events as ev
from .failover.monitor import Monitor
from .server import NodeServer, gating
from .server.config import Config
from .storage import atomic_write


class Node:
    def __init__(self, cluster, name: str, data_dir: str, configs: dict[str, str]):
        self.cluster = cluster
        self.name = name
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.config = Config({**configs, "dir": data_dir})
        self.events: ev.EventBus = cluster.events
        self.port = 0
        self.server: NodeServer | None = None
        self.monitor: Monitor | None = None
        self.lost_bytes_total = 0
        self.disk_fault: OSError | None = None
        self.raft_port = 0
        self._raft_socket = None                 # raft: the peer port reserved before the first start
        self._log: list[str] = []

    def __repr__(self):
        return f"<Node {self.name} port={self.port} role={self.role} alive={self.alive}>"

    # -- what a user reads ------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.server is not None

    @property
    def role(self) -> str:
        """``"primary"``, ``"replica"``, or ``"down"`` for a killed node."""
        server = self.server
        if server is None:
            return "down"
        return "primary" if server.leads else "replica"

    @property
    def loop(self):
        return self.cluster.runtime.loop

    # -- faults (synchronous, for cells and tests) -------------------------------------
    def kill(self, power_loss: bool = False) -> None:
        """Crash the node: sockets close abruptly and memory is gone. With
        ``power_loss=True`` every file also loses what was written but not fsynced."""
        self.cluster.runtime.run(self._kill(power_loss))

    def restart(self) -> None:
        """Start again on the same port from what is on disk; rejoin as the mode says."""
        if self not in self.cluster.nodes:
            raise ValueError(f"{self.name} was removed from the cluster; "
                             "add_node() starts a new one")
        self.cluster.runtime.run(self._restart())

    def gate_snapshot(self) -> dict:
        """Plain data about this node's commit gate: offsets, held replies, counters."""
        if self.cluster._closed:
            raise RuntimeError("the cluster is closed")
        def read():
            return {"alive": False} if self.server is None else gating.snapshot(self.server)
        return self.cluster.runtime.call(read)

    def pause(self) -> None:
        """Stop processing without closing any socket (a GC pause, a SIGSTOP)."""
        self.cluster.runtime.call(lambda: self.server and self.server.pause())

    def resume(self) -> None:
        self.cluster.runtime.call(lambda: self.server and self.server.resume())

    def fail_disk(self, error: OSError | None = None) -> None:
        """Make every write and fsync of this node's files fail (``EIO`` by default),
        as a dying disk does, until :meth:`heal_disk`."""
        import errno
        fault = error or OSError(errno.EIO, os.strerror(errno.EIO))
        self.cluster.runtime.call(self._set_disk_fault, fault)

    def heal_disk(self) -> None:
        self.cluster.runtime.call(self._set_disk_fault, None)

    def _set_disk_fault(self, fault) -> None:
        self.disk_fault = fault
        if self.server is not None and self.server.aof is not None:
            self.server.aof.inject_fault(fault)
        if self.server is not None and self.server.raft is not None:
            self.server.raft.storage.inject_fault(fault)
        self.events.publish(ev.DiskFault(self.name, error=str(fault) if fault else None))

    # -- the loop side -------------------------------------------------------------------
    async def _start(self, replica_of: str | None = None, amnesic: bool = False) -> None:
        server = NodeServer(self)
        server.port = self.port
        server.amnesic = amnesic
        target = None
        if replica_of is not None:
            target = ("127.0.0.1", self.port_of(replica_of))
        await server.start(target)
        if self.disk_fault is not None and server.aof is not None:
            server.aof.inject_fault(self.disk_fault)
        if self.disk_fault is not None and server.raft is not None:
            server.raft.storage.inject_fault(self.disk_fault)
        self.server = server
        self.port = server.port
        if server.raft is not None:
            self.raft_port = server.raft.port
        if self.cluster.monitored:
            self.monitor = Monitor(self, self.cluster.names,
                                   down_after_ms=self.cluster.down_after_ms)
            self.monitor.start()
        self.events.publish(ev.NodeStarted(self.name, port=self.port, role=server.role))

    async def _kill(self, power_loss: bool, *, removed: bool = False) -> None:
        """Crash the node; ``removed``: stop it on purpose (it leaves the cluster, and
        publishes no NodeKilled: the cluster publishes NodeRemoved)."""
        if self.server is None:
            return
        server, self.server = self.server, None
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        lost = server.kill(power_loss)
        self.lost_bytes_total += lost
        self._log.extend(server.log_lines)
        if not removed:
            self.events.publish(ev.NodeKilled(self.name, power_loss=power_loss, lost_bytes=lost))

    async def _restart(self) -> None:
        if self.server is not None:
            await self._kill(False)
        saved = self.saved_state()
        primary = saved.get("primary") if saved.get("role") == "replica" else None
        amnesic = (saved.get("role") == "primary" and not self.config["appendonly"]
                   and self.config["durability-mode"] == "sync")
        if amnesic:
            # sync in memory: a primary that restarts has lost every write it held, so it
            # must not lead again. It rejoins as a replica (of anyone, until the monitors,
            # which now see a primary that is not one, fail over and redirect it).
            primary = next(n for n in self.cluster.names if n != self.name)
            self.log("restarted without persistence: its data is gone, it rejoins as a replica")
        if saved.get("replica_eligible"):
            # sync: a restarted replica may have lost what it acknowledged (a power cut),
            # and cannot know what it missed: it is ineligible until granted again
            self.save_state(replica_eligible=False)
            self.events.publish(ev.EligibilityRevoked(self.name, replica=self.name,
                                                      reason="restarted", agreed=False))
        await self._start(replica_of=primary, amnesic=amnesic)
        self.events.publish(ev.NodeRestarted(self.name, port=self.port,
                                             loaded_commands=self.server.loaded_commands))

    # -- services the server and the monitor ask of their node --------------------------
    def port_of(self, name: str) -> int:
        return self.cluster.node(name).port

    def client_port_of(self, name: str) -> int:
        """raft: the client port of shard member ``name`` (0 if it is unknown here)."""
        try:
            return self.cluster.node(name).port
        except KeyError:
            return 0

    def reserve_raft_port(self) -> int:
        """raft: take a free loopback port for the Raft peer listener before the first
        start, so every member's address can go into ``shard-nodes`` up front."""
        from .consensus.transport import reserve_port
        if self._raft_socket is None and not self.raft_port:
            self._raft_socket = reserve_port()
            self.raft_port = self._raft_socket.getsockname()[1]
            self.config.set("raft-port", self.raft_port, initial=True)   # restarts bind it again
        return self.raft_port

    def take_raft_socket(self):
        sock, self._raft_socket = self._raft_socket, None
        return sock

    def raft_address_of(self, name: str) -> tuple[str, int]:
        """Where this node dials member ``name``'s Raft port: through the link proxy."""
        network = self.cluster.network
        if network is not None and (self.name, name) in network.raft_links:
            return network.address(self.name, name, channel="raft")
        for member, host, port in self.config["shard-nodes"]:
            if member == name:
                return host, port
        return "127.0.0.1", self.cluster.node(name).raft_port

    def address_of(self, name: str) -> tuple[str, int]:
        """Where this node connects to reach node ``name``: through the link proxy."""
        return self.cluster.network.address(self.name, name)

    def peer_name_for_port(self, port: int) -> str | None:
        for node in self.cluster.nodes:
            if node.port == port and node is not self:
                return node.name
        return None

    def route_to(self, host: str, port: int) -> tuple[str, int]:
        peer = self.peer_name_for_port(port)
        if peer is not None and self.cluster.network is not None:
            return self.address_of(peer)
        return host, port

    def save_role(self, role: tuple) -> None:
        """Remember the role across restarts, as Valkey rewrites its config file. A new
        role starts without eligibility (sync): a primary's grants and a replica's grant
        belong to the role they were made in."""
        if role[0] == "replica":
            data = {"role": "replica", "primary": self.peer_name_for_port(role[2])}
        else:
            data = {"role": "primary"}
        self._write_state(data)

    def save_state(self, **fields) -> None:
        """Persist more of the node's state beside its role (sync: ``eligible``, the
        replicas a primary waits for; ``replica_eligible``, a replica's own grant)."""
        self._write_state({**self.saved_state(), **fields})

    def _write_state(self, data: dict) -> None:
        atomic_write(os.path.join(self.data_dir, "node.json"), json.dumps(data).encode())

    def saved_state(self) -> dict:
        """What :meth:`save_role` and :meth:`save_state` wrote (``{}`` for a new node)."""
        try:
            with open(os.path.join(self.data_dir, "node.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def apply_config(self, name: str, value: str) -> None:
        self.config.set(name, value)
        server = self.server
        if server is None:
            return
        name = name.lower()
        if name == "notify-keyspace-events":
            server.pubsub.configure(self.config[name])
        elif name == "slowlog-log-slower-than":
            server.slowlog_threshold_us = self.config[name]
        elif name == "appendonly":
            if self.config[name] and server.aof is None:
                server.start_aof()
            elif not self.config[name] and server.aof is not None:
                gating.disable(server, disconnect=False)
                server.stop_aof()
        if name in ("appendonly", "appendfsync", "aof-write-behind"):
            gating.reconcile(server)        # e.g. appendfsync everysec releases held replies
            if server.aof is not None:
                server.start_fsync_thread()

    def log(self, line: str) -> None:
        if self.server is not None:
            self.server.log(line)
        else:
            self._log.append(line)

    @property
    def log_lines(self) -> list[str]:
        return self._log + (self.server.log_lines if self.server else [])
