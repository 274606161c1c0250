"""The raft mode's peer transport over real loopback sockets, and the one-way cut.

Two PeerTransports talk as two nodes would: each writes on its own outgoing connection.
A peer that sends a damaged frame loses its connection and nothing it sent is delivered;
a message for a peer that cannot be reached is dropped (Raft resends), never queued
without bound. Then a live shard: cutting the leader -> follower direction only leaves
the follower deaf but the leader still hearing it.
"""

from __future__ import annotations

import asyncio
import socket

import workbench as wb
from workbench.consensus.transport import PeerTransport
from workbench.raft import AppendResponse, TimeoutNow

from conftest import wait_for


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def until(condition, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def pair():
    """Two transports, each dialling the other directly."""
    got = {"a": [], "b": []}
    ports = {}
    a = PeerTransport("a", lambda peer: ("127.0.0.1", ports[peer]), got["a"].append, lambda _: None)
    b = PeerTransport("b", lambda peer: ("127.0.0.1", ports[peer]), got["b"].append, lambda _: None)
    await a.start()
    await b.start()
    ports.update(a=a.port, b=b.port)
    return a, b, got


def test_messages_cross_on_each_sides_own_connection():
    async def scenario():
        a, b, got = await pair()
        hello = TimeoutNow(src="a", dst="b", term=3)
        a.send([hello])                       # no connection yet: dropped, a dial starts
        assert a.dropped == 1
        await until(lambda: "b" in a.connected())
        a.send([hello, TimeoutNow(src="a", dst="b", term=4)])
        await until(lambda: len(got["b"]) == 2)
        assert got["b"][0] == hello and got["b"][1].term == 4
        assert got["a"] == [] and b.connected() == set()   # b has not said anything
        b.send([AppendResponse(src="b", dst="a", term=4, success=True, match_index=7)])
        await until(lambda: "a" in b.connected())
        b.send([AppendResponse(src="b", dst="a", term=4, success=True, match_index=7)])
        await until(lambda: len(got["a"]) == 1)
        assert got["a"][0].match_index == 7
        a.close()
        b.close()
    run(scenario())


def test_a_damaged_frame_closes_that_connection_only():
    async def scenario():
        a, b, got = await pair()
        raw = socket.create_connection(("127.0.0.1", b.port))
        raw.sendall(b"RMS1\x00\x00\x00\x05\x00\x00\x00\x00hello")   # checksum 0: wrong
        await until(lambda: b.bad_frames == 1)
        raw.settimeout(2)
        assert raw.recv(10) == b""            # b closed it
        raw.close()
        a.send([TimeoutNow(src="a", dst="b", term=1)])
        await until(lambda: "b" in a.connected())
        a.send([TimeoutNow(src="a", dst="b", term=1)])
        await until(lambda: len(got["b"]) == 1)  # other peers are unaffected
        a.close()
        b.close()
    run(scenario())


def test_an_unreachable_peer_costs_dropped_messages_not_memory():
    async def scenario():
        with socket.socket() as s:           # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        a = PeerTransport("a", lambda peer: ("127.0.0.1", dead), lambda m: None, lambda _: None)
        await a.start()
        for _ in range(100):
            a.send([TimeoutNow(src="a", dst="z", term=1)])
            await asyncio.sleep(0)
        assert a.dropped == 100 and a.sent == 0 and a.connected() == set()
        a.close()
    run(scenario())


def test_a_one_way_cut_leaves_the_follower_deaf_but_heard():
    """Cut leader -> n_f only. The follower hears no heartbeat and asks for pre-votes,
    but the other follower still hears the leader and refuses (check-quorum): no
    election, no new term. The leader still hears the cut-off follower's answers -- but
    with nothing new arriving, it sends none; the leader commits with the third node."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        leader = c.primary()
        deaf, other = [n for n in c.nodes if n is not leader]
        term = c.runtime.call(lambda: leader.server.raft.core.term)
        c.cut(leader, deaf)
        r = c.client()
        for i in range(20):
            assert r.set(f"k{i}", i) is True
        commit = c.runtime.call(lambda: leader.server.raft.core.commit_index)
        wait_for(lambda: c.runtime.call(lambda: other.server.raft.applied_index) >= commit)
        # two election timeouts: the deaf follower has campaigned, in vain
        wait_for(lambda: c.runtime.call(lambda: deaf.server.raft.core.role.value)
                 in ("pre-candidate", "candidate"), timeout=5)
        assert c.runtime.call(lambda: deaf.server.raft.applied_index) < commit
        assert c.runtime.call(lambda: leader.server.raft.core.term) == term
        assert c.current_primary() is leader
        c.heal()
        wait_for(lambda: c.runtime.call(lambda: deaf.server.raft.applied_index) >= commit)
        assert c.client(deaf).info("raft")["raft_leader"] == leader.name
