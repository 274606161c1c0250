"""The network between nodes: one TCP proxy per directed link, which the nemesis can cut.

Clients reach every node directly on its port. Node-to-node traffic -- replication and
the failover monitors' pings and votes, and in ``raft`` mode the Raft messages, which go
to each node's Raft peer port -- goes through a :class:`LinkProxy` for the ordered pair
(from, to) and the port: node ``n1`` talks to ``n2`` by connecting to the proxy
``n1->n2``, which forwards to ``n2``'s real port.

A *link* is a direction: :meth:`Network.cut` silences ``n1 -> n2`` only. A Raft node
writes its messages to a peer on its own outgoing connection, so a one-way cut stops
exactly what ``n1`` says to ``n2`` (replication and monitors answer on the connection
they were asked on, so for them a cut link stops the whole exchange).

Cutting a link models a network partition, not a crash: bytes stop flowing but
connections stay open, exactly as TCP behaves when packets are dropped. Nobody is told;
peers notice only through their own timeouts. When the link heals, the bytes that
queued up flow again. New connections across a cut link hang in ``connect`` until it
heals or the caller gives up.
"""

from __future__ import annotations

import asyncio
import itertools

from ..events import EventBus, Healed, Partitioned


class _Pipe(asyncio.Protocol):
    """One direction-agnostic end of a proxied connection."""

    def __init__(self, link: "LinkProxy", downstream: bool = False):
        self.link = link
        self.downstream = downstream
        self.transport = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport
        if self.link.cut:
            transport.pause_reading()
        if self.downstream:
            asyncio.get_running_loop().create_task(self.link._connect_upstream(self))

    def data_received(self, data):
        if self.peer is None or self.peer.transport is None:
            self.pending.append(data)
        elif not self.peer.transport.is_closing():
            # A peer that is closing (its node crashed; its connection_lost has not run
            # yet) drops the bytes, as the wire would; uvloop raises on such a write.
            self.peer.transport.write(data)

    def connection_lost(self, exc):
        self.link.pipes.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def close(self):
        if self.transport is not None:
            self.transport.abort()


class LinkProxy:
    """Forwards connections from ``src`` to ``dst``; ``cut`` stops every byte."""

    def __init__(self, src: str, dst: str, target_port_of):
        self.src, self.dst = src, dst
        self._target_port_of = target_port_of
        self.cut = False
        self.port = 0
        self.pipes: set[_Pipe] = set()
        self._server: asyncio.AbstractServer | None = None
        self._healed = asyncio.Event()
        self._healed.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self) -> _Pipe:
        downstream = _Pipe(self, downstream=True)
        self.pipes.add(downstream)
        return downstream

    async def _connect_upstream(self, downstream: _Pipe) -> None:
        await self._healed.wait()            # a connect across a cut link hangs
        if downstream.transport is None or downstream.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                lambda: _Pipe(self), "127.0.0.1", self._target_port_of(self.dst))
        except OSError:                      # the destination node is down
            downstream.close()
            return
        if downstream.transport.is_closing():    # the caller left while we connected
            upstream.close()
            return
        self.pipes.add(upstream)
        upstream.peer, downstream.peer = downstream, upstream
        for chunk in downstream.pending:
            upstream.transport.write(chunk)
        downstream.pending.clear()
        if self.cut:
            upstream.transport.pause_reading()
            downstream.transport.pause_reading()

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        for pipe in list(self.pipes):
            if pipe.transport is None or pipe.transport.is_closing():
                continue
            if cut:
                pipe.transport.pause_reading()
            else:
                pipe.transport.resume_reading()
        if cut:
            self._healed.clear()
        else:
            self._healed.set()

    def drop_connections_to(self) -> None:
        """Close every proxied connection (the destination crashed)."""
        for pipe in list(self.pipes):
            pipe.close()

    async def close(self) -> None:
        self.drop_connections_to()
        if self._server is not None:
            self._server.close()
            self._healed.set()


class Network:
    """All links of one cluster. Lives on the cluster's event loop."""

    def __init__(self, names: list[str], target_port_of, events: EventBus, raft_port_of=None):
        self.names = list(names)
        self.events = events
        self._target_port_of = target_port_of
        self._raft_port_of = raft_port_of
        self.links = {(a, b): LinkProxy(a, b, target_port_of)
                      for a, b in itertools.permutations(self.names, 2)}
        self.raft_links = ({(a, b): LinkProxy(a, b, raft_port_of)
                            for a, b in itertools.permutations(self.names, 2)}
                           if raft_port_of is not None else {})
        self.groups: tuple = ()

    def _every_link(self):
        yield from self.links.items()
        yield from self.raft_links.items()

    async def start(self) -> None:
        for _, link in self._every_link():
            await link.start()

    def address(self, src: str, dst: str, channel: str = "node") -> tuple[str, int]:
        """Where ``src`` must connect to reach ``dst`` (``channel="raft"``: its Raft port)."""
        links = self.raft_links if channel == "raft" else self.links
        return "127.0.0.1", links[(src, dst)].port

    def node_for_proxy_port(self, src: str, port: int) -> str | None:
        for (a, b), link in self.links.items():
            if a == src and link.port == port:
                return b
        return None

    def can_reach(self, src: str, dst: str) -> bool:
        return src == dst or not self.links[(src, dst)].cut

    def partition(self, *groups) -> None:
        """Cut every link between different groups; nodes not named form one more group."""
        groups = [list(g) for g in groups]
        named = {n for g in groups for n in g}
        unknown = named - set(self.names)
        if unknown:
            raise ValueError(f"unknown nodes {sorted(unknown)}; nodes are {self.names}")
        rest = [n for n in self.names if n not in named]
        if rest:
            groups.append(rest)
        side = {n: i for i, g in enumerate(groups) for n in g}
        for (a, b), link in self._every_link():
            link.set_cut(side[a] != side[b])
        self.groups = tuple(tuple(g) for g in groups)
        self.events.publish(Partitioned("network", groups=self.groups))

    def cut(self, src: str, dst: str) -> None:
        """Silence the one direction ``src -> dst`` (both of its ports); the other
        direction keeps working. :meth:`heal` restores it."""
        for name in (src, dst):
            if name not in self.names:
                raise ValueError(f"unknown node {name!r}; nodes are {self.names}")
        if src == dst:
            raise ValueError("a link joins two different nodes")
        for links in (self.links, self.raft_links):
            if (src, dst) in links:
                links[(src, dst)].set_cut(True)
        self.events.publish(Partitioned("network", groups=(), one_way=((src, dst),)))

    def heal(self) -> None:
        for _, link in self._every_link():
            link.set_cut(False)
        self.groups = ()
        self.events.publish(Healed("network"))

    async def add_node(self, name: str) -> None:
        """Links to and from a node joining the cluster. They start whole: during a
        partition the new node reaches every side until the next :meth:`partition`."""
        if name in self.names:
            return
        for links, port_of in ((self.links, self._target_port_of),
                               (self.raft_links, self._raft_port_of)):
            if port_of is None:
                continue
            new = {}
            for other in self.names:
                new[(name, other)] = LinkProxy(name, other, port_of)
                new[(other, name)] = LinkProxy(other, name, port_of)
            for link in new.values():
                await link.start()
            links.update(new)
        self.names.append(name)

    async def remove_node(self, name: str) -> None:
        """Close every link to and from a node that left the cluster."""
        if name not in self.names:
            return
        self.names.remove(name)
        for links in (self.links, self.raft_links):
            for key in [k for k in links if name in k]:
                await links.pop(key).close()
        if self.groups:
            self.groups = tuple(g for g in (tuple(n for n in group if n != name)
                                            for group in self.groups) if g)

    def node_crashed(self, name: str) -> None:
        for (a, b), link in self._every_link():
            if name in (a, b):
                link.drop_connections_to()

    async def close(self) -> None:
        for _, link in self._every_link():
            await link.close()
