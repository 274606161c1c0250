"""Streams side by side with a real redis-server: replies, errors word for word (so the
order of argument checks too) and keyspace events; then XREAD/XREADGROUP BLOCK on a node.

Scripts use explicit IDs (``*`` takes each server's own clock) and avoid replies that
tell times (idle, delivery times). Differences from Redis 7.0 that follow Valkey 8 are
checked in ``test_store_streams.py``: XINFO CONSUMERS' ``inactive``, XINFO STREAM FULL's
``active-time``.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

import workbench as wb
from conftest import RawClient, aof_node, reply_blocking_info, wait_for  # noqa: F401
from differential_helpers import (both, keyspace_events, port_of, redis_server,  # noqa: F401
                                  wire_replies)

pytestmark = pytest.mark.compat

SCRIPTS = {}
SCRIPTS["add_range"] = [
    'XADD s 1-1 a 1', 'XADD s 1-1 a 1', 'XADD s 1-0 a 1', 'XADD s 0-0 a 1', 'XADD s 1-* b 2',
    'XADD s 5 c 3', 'XADD s 5-* d 4', 'XADD s 7-18446744073709551615 e 5',
    'XADD s x a 1', 'XADD s 1-x a 1', 'XADD s 1-2-3 a 1', 'XADD s -1 a 1', 'XADD s 9 a',
    'XADD s 9 a 1 b', 'XADD s MAXLEN x 9 a 1', 'XADD s MAXLEN -1 9 a 1',
    'XADD s MAXLEN 5 LIMIT 2 9 a 1', 'XADD s LIMIT 2 9 a 1', 'XADD s LIMIT 0 9-1 a 1',
    'XADD s MINID + 10 a 1', 'XADD s MINID x 10 a 1', 'XADD s NOMKSTREAM 10 a 1',
    'XADD nokey NOMKSTREAM 1-1 a 1', 'EXISTS nokey', 'XADD s MAXLEN ~ 2 11 a 1',
    'XADD s MAXLEN = 6 12 a 1', 'XLEN s', 'XRANGE s - +', 'XRANGE s - + COUNT 2',
    'XRANGE s - + COUNT 0', 'XRANGE s - + COUNT -1', 'XRANGE s (5 +', 'XRANGE s 5 (12',
    'XRANGE s ( +', 'XRANGE s (- +', 'XRANGE s 5 5', 'XRANGE s 7 7', 'XRANGE s 12 5',
    'XRANGE s - + COUNT', 'XRANGE s - + FOO 1', 'XRANGE s x +', 'XRANGE s - x',
    'XRANGE s (18446744073709551615-18446744073709551615 +', 'XRANGE s - (0-0',
    'XRANGE nokey - + COUNT 0', 'XREVRANGE s + -', 'XREVRANGE s + - COUNT 2',
    'XREVRANGE s (12 (5', 'XREVRANGE s - +', 'XLEN nokey', 'SET str x', 'XADD str 1 a 1',
    'XRANGE str - +', 'XLEN str', 'XDEL str 1', 'XTRIM str MAXLEN 1', 'TYPE s',
    'OBJECT ENCODING s',
]
SCRIPTS["delete_trim"] = [
    'XADD s 1 a 1', 'XADD s 2 a 2', 'XADD s 3 a 3', 'XADD s 4 a 4', 'XADD s 5 a 5',
    'XDEL s 2 2 9', 'XDEL s x', 'XDEL nokey x', 'XDEL nokey 1', 'XLEN s', 'XTRIM s',
    'XTRIM s MAXLEN', 'XTRIM s FOO 1', 'XTRIM s MAXLEN 1 LIMIT 1', 'XTRIM s LIMIT 1',
    'XTRIM s MAXLEN ~ 1 LIMIT x', 'XTRIM s MAXLEN ~ 1 LIMIT -1', 'XTRIM s MAXLEN ~ 1',
    'XTRIM s MINID 4', 'XRANGE s - +', 'XTRIM s MAXLEN 0', 'XLEN s', 'EXISTS s',
    'XTRIM nokey MAXLEN 0', 'XADD s 3 a 3', 'XADD s 6 a 6', 'XSETID s 5', 'XSETID s 7',
    'XSETID s 7 ENTRIESADDED 1', 'XSETID s 7 ENTRIESADDED -1', 'XSETID s 7 ENTRIESADDED x',
    'XSETID s 7 MAXDELETEDID 8', 'XSETID s 9 MAXDELETEDID 8 ENTRIESADDED 50',
    'XSETID s 9 FOO', 'XSETID s +', 'XSETID nokey 1', 'XSETID s 1', 'XADD s 9 a 1',
    'XADD s 10 a 1', 'XINFO STREAM s', 'XINFO STREAM nokey', 'XINFO STREAM s FOO',
    'XINFO STREAM s FULL COUNT x', 'XINFO FOO s', 'XINFO STREAM', 'XINFO GROUPS s 1',
]
SCRIPTS["groups"] = [
    'XGROUP CREATE s g 0', 'XGROUP CREATE s g $ MKSTREAM', 'XGROUP CREATE s g $ MKSTREAM',
    'XGROUP CREATE s g2 x', 'XGROUP CREATE s g2 0 ENTRIESREAD -2',
    'XGROUP CREATE s g2 0 FOO', 'XGROUP CREATE s', 'XGROUP FOO s g', 'XGROUP HELP x',
    'XGROUP SETID s nog 0', 'XGROUP SETID s g 0 FOO 1', 'XGROUP CREATECONSUMER s nog c',
    'XGROUP DESTROY nokey g', 'XGROUP DESTROY s nog', 'XADD s 1 a 1', 'XADD s 2 b 2',
    'XADD s 3 c 3', 'XADD s 4 d 4', 'XGROUP CREATECONSUMER s g idle',
    'XGROUP CREATECONSUMER s g idle', 'XREADGROUP GROUP g alice COUNT 2 STREAMS s >',
    'XREADGROUP GROUP g bob STREAMS s >', 'XREADGROUP GROUP g bob STREAMS s >',
    'XREADGROUP GROUP g alice STREAMS s 0', 'XREADGROUP GROUP g alice COUNT 1 STREAMS s 1',
    'XREADGROUP GROUP g alice STREAMS s $', 'XREADGROUP GROUP nog c STREAMS s >',
    'XREADGROUP GROUP g c STREAMS nokey >', 'XREADGROUP GROUP g c STREAMS s', 'XREADGROUP STREAMS s >',
    'XREADGROUP GROUP g STREAMS s >', 'XREADGROUP GROUP g c FOO STREAMS s >',
    'XREADGROUP GROUP g c COUNT x STREAMS s >', 'XPENDING s g', 'XPENDING s g IDLE 100000 - + 10',
    'XPENDING s g IDLE 99999 - + 10 bob', 'XPENDING s g - + 10 nobody', 'XPENDING s g - +',
    'XPENDING s g IDLE x - + 10', 'XPENDING s g IDLE 0 - +', 'XPENDING s g - + x',
    'XPENDING s g x + 1', 'XPENDING s nog', 'XPENDING nokey g', 'XPENDING str g',
    'XACK s g 1 9', 'XACK s g x', 'XACK s nog 1', 'XACK nokey g x', 'XPENDING s g',
    'XCLAIM s g carol 0 2 JUSTID', 'XCLAIM s g carol 0 2 3 JUSTID RETRYCOUNT 7',
    'XCLAIM s g carol x 2', 'XCLAIM s g carol 0 2 FOO', 'XCLAIM s g carol 0 2 IDLE x',
    'XCLAIM s g carol 0 2 TIME x', 'XCLAIM s g carol 0 2 RETRYCOUNT x',
    'XCLAIM s g carol 0 2 LASTID x', 'XCLAIM s nog carol 0 2', 'XCLAIM s g carol 0 9',
    'XCLAIM s g dave 0 1 FORCE JUSTID', 'XCLAIM s g dave 0 4 FORCE JUSTID',
    'XCLAIM s g dave 0 4 FORCE', 'XPENDING s g', 'XAUTOCLAIM s g erin 0 0 COUNT 1 JUSTID',
    'XAUTOCLAIM s g erin 0 0 JUSTID', 'XAUTOCLAIM s g erin 0 (2', 'XAUTOCLAIM s g erin x 0',
    'XAUTOCLAIM s g erin 0 x', 'XAUTOCLAIM s g erin 0 0 COUNT 0', 'XAUTOCLAIM s g erin 0 0 FOO',
    'XAUTOCLAIM s nog erin 0 0', 'XDEL s 3', 'XAUTOCLAIM s g erin 0 0 JUSTID',
    'XREADGROUP GROUP g erin STREAMS s 0', 'XINFO GROUPS s', 'XGROUP SETID s g 1',
    'XINFO GROUPS s', 'XGROUP SETID s g $ ENTRIESREAD 3', 'XINFO GROUPS s',
    'XREADGROUP GROUP g fay NOACK STREAMS s >', 'XGROUP SETID s g 0',
    'XREADGROUP GROUP g fay NOACK STREAMS s >', 'XPENDING s g', 'XGROUP DELCONSUMER s g erin',
    'XGROUP DELCONSUMER s g erin', 'XPENDING s g', 'XGROUP DESTROY s g', 'XINFO GROUPS s',
    'XINFO CONSUMERS s g', 'XREAD STREAMS s 0', 'XREAD COUNT 1 STREAMS s nokey 0 0',
    'XREAD STREAMS s $', 'XREAD STREAMS s >', 'XREAD STREAMS s', 'XREAD GROUP g c STREAMS s 0',
    'XREAD NOACK STREAMS s 0', 'XREAD BLOCK x STREAMS s 0', 'XREAD BLOCK -1 STREAMS s 0',
    'XREAD COUNT x STREAMS s 0', 'XREAD STREAMS s x', 'XREAD STREAMS str 0',
]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_and_errors(both, name):
    """Raw replies, command by command (XPENDING's detailed form defeats redis-py)."""
    ours, theirs = both
    script = ["SET str x", *SCRIPTS[name]]
    for command, a, b in zip(script, wire_replies(port_of(ours), script, 2),
                             wire_replies(port_of(theirs), script, 2)):
        assert a == b, command


def test_replies_byte_for_byte(both):
    ours, theirs = both
    script = ['XADD s 1-1 a 1 b 2', 'XADD s 2 c 3', 'XGROUP CREATE s g 0',
              'XREADGROUP GROUP g c STREAMS s >', 'XREAD STREAMS s 0', 'XRANGE s - +',
              'XPENDING s g', 'XINFO GROUPS s', 'XADD e NOMKSTREAM 1 a 1']
    for proto in (2, 3):
        ours.flushall()
        theirs.flushall()
        assert wire_replies(port_of(ours), script, proto) == \
            wire_replies(port_of(theirs), script, proto), proto


def test_keyspace_events(both):
    ours, theirs = both
    script = ['XADD s 1 a 1', 'XADD s 2 a 1', 'XADD s MAXLEN 1 3 a 1', 'XDEL s 3 9',
              'XDEL s 9', 'XTRIM s MAXLEN 0', 'XSETID s 9', 'XGROUP CREATE s g 0',
              'XGROUP CREATE t g $ MKSTREAM', 'XGROUP CREATECONSUMER s g c',
              'XGROUP SETID s g 0', 'XADD s 10 a 1', 'XREADGROUP GROUP g d STREAMS s >',
              'XCLAIM s g e 0 10', 'XACK s g 10', 'XGROUP DELCONSUMER s g c',
              'XGROUP DESTROY s g', 'XGROUP DESTROY s g']
    assert keyspace_events(ours, script) == keyspace_events(theirs, script)


# -- BLOCK, on a workbench node ----------------------------------------------------------
@pytest.fixture
def node():
    with wb.Cluster(mode="async", nodes=1) as cluster:
        yield cluster.nodes[0].port


def _in_thread(fn):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", fn()))
    thread.start()
    return thread, result


def _wait_blocked(client, n: int = 1):
    deadline = time.monotonic() + 10
    while int(client.info("clients")["blocked_clients"]) < n:
        assert time.monotonic() < deadline, "the reader never blocked"
        time.sleep(0.01)


def test_xread_block_is_served_by_the_next_xadd(node):
    writer = redis.Redis(port=node, socket_timeout=10)
    reader = redis.Redis(port=node, socket_timeout=10)
    writer.xadd("s", {"a": "1"}, id="1-1")
    thread, result = _in_thread(lambda: reader.execute_command("XREAD", "BLOCK", "0",
                                                               "STREAMS", "s", "$"))
    _wait_blocked(writer)
    writer.xadd("s", {"b": "2"}, id="2-1")
    thread.join(10)
    assert result["r"] == [[b"s", [(b"2-1", {b"b": b"2"})]]]          # as redis-py parses it
    assert reader.execute_command("XREAD", "BLOCK", "50", "STREAMS", "s", "$") == []  # null


def test_xreadgroup_block_is_served_and_pends(node):
    writer = redis.Redis(port=node, socket_timeout=10)
    reader = redis.Redis(port=node, socket_timeout=10)
    writer.xgroup_create("s", "g", id="$", mkstream=True)
    thread, result = _in_thread(lambda: reader.execute_command(
        "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"))
    _wait_blocked(writer)
    writer.xadd("s", {"a": "1"}, id="5-1")
    thread.join(10)
    assert result["r"] == [[b"s", [(b"5-1", {b"a": b"1"})]]]
    assert writer.xpending("s", "g")["pending"] == 1
    # inside MULTI it does not wait
    pipe = reader.pipeline(transaction=True)
    pipe.execute_command("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    assert pipe.execute() == [[]]                        # a null array, parsed
    # a destroyed group ends the wait
    thread, result = _in_thread(lambda: _error_of(lambda: reader.execute_command(
        "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")))
    _wait_blocked(writer)
    writer.xgroup_destroy("s", "g")
    thread.join(10)
    assert result["r"].startswith("NOGROUP")


def _error_of(call):
    try:
        return call()
    except redis.ResponseError as err:
        return str(err)


def test_xread_block_from_a_script_is_refused(node):
    client = redis.Redis(port=node, socket_timeout=10)
    error = _error_of(lambda: client.eval(
        "return redis.call('XREAD', 'BLOCK', '0', 'STREAMS', 's', '0')", 0))
    assert "not allowed with BLOCK option from scripts" in error


def test_a_served_xreadgroup_is_held_until_its_delivery_is_fsynced(aof_node):
    """A delivery moves the group and fills the PEL: a write, held by the commit gate."""
    r = aof_node.client()
    r.xgroup_create("s", "g", id="$", mkstream=True)
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(b"XREADGROUP GROUP g c BLOCK 0 STREAMS s >\r\n")
    _wait_blocked(r)
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(b"XADD s 7-1 a 1\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2,
             what="the XADD's and the served XREADGROUP's replies to be held")
    assert int(r.info("clients")["blocked_clients"]) == 0  # served, but not told yet
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    expected = b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n7-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert reader.read_exactly_reply(len(expected)) == expected
    assert writer.read_exactly_reply(9) == b"$3\r\n7-1\r\n"
    reader.close()
    writer.close()


def test_object_memory_copy_dump_restore_on_a_node(node):
    client = redis.Redis(port=node, socket_timeout=10)
    client.xadd("s", {"a": "1"}, id="1-1")
    client.xgroup_create("s", "g", id="0")
    client.xreadgroup("g", "c", {"s": ">"})
    assert client.object("encoding", "s") == b"stream"
    assert client.type("s") == b"stream"
    assert client.memory_usage("s") > 100
    assert client.copy("s", "t") and client.xpending("t", "g")["pending"] == 1
    client.restore("u", 0, client.dump("s"))
    assert client.xinfo_groups("u") == client.xinfo_groups("s")
    assert client.xrange("u") == client.xrange("s")
