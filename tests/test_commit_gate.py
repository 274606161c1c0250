"""The commit gate end to end (``aof`` mode): replies held until durable, over real sockets."""

from __future__ import annotations

import random
import socket
import threading

import pytest
import redis

import workbench as wb
from conftest import RawClient, reply_blocking_info, wait_for


def held_write(cluster, request: bytes) -> RawClient:
    """Send a write from a fresh client while paused; wait until its key is dirty.
    Keep the returned client open: its reply is held on that connection."""
    writer = RawClient(cluster.nodes[0].port)
    writer.send(request)
    wait_for(lambda: reply_blocking_info(cluster)["reply_blocking_uncommitted_keys"] == 1, what="dirty key")
    return writer


def nothing_arrived(raw: RawClient) -> bool:
    """True when no byte is waiting on the socket right now (the reply is still held)."""
    raw.sock.setblocking(False)
    try:
        raw.sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    finally:
        raw.sock.settimeout(5)


def test_a_write_reply_waits_for_the_fsync(aof_node):
    r = aof_node.client()
    assert reply_blocking_info(aof_node)["reply_blocking_enabled"] == 1
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1,
             what="the SET reply to be held")
    assert nothing_arrived(writer)                       # held in the server, not on the wire
    assert reply_blocking_info(aof_node)["reply_blocking_uncommitted_keys"] == 1
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert writer.read_exactly_reply(5) == b"+OK\r\n"
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_uncommitted_keys"] == 0,
             what="the key to be committed")
    writer.close()


def test_reads_of_uncommitted_keys_wait_other_keys_do_not(aof_node):
    r = aof_node.client()
    r.set("clean", "1")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = held_write(aof_node, b"SET dirty v\r\n")
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(b"GET dirty\r\n")
    assert r.get("clean") == "1"                   # a committed key answers at once
    assert r.exists("clean") == 1
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_read_blocked_count"] >= 1,
             what="the dirty read to be held")
    assert nothing_arrived(reader)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert reader.read_exactly_reply(7) == b"$1\r\nv\r\n"
    assert writer.read_exactly_reply(5) == b"+OK\r\n"       # the write's own reply, after it


def test_pipeline_keeps_order_and_lets_earlier_replies_go(aof_node):
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    c = RawClient(aof_node.nodes[0].port)
    c.send(b"PING\r\nSET p 1\r\nPING\r\n")
    assert c.read_exactly_reply(7) == b"+PONG\r\n"         # before the write: goes at once
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="hold")
    assert nothing_arrived(c)                              # the PING after the SET waits too
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert c.read_exactly_reply(12) == b"+OK\r\n+PONG\r\n"


def test_keyspace_wide_commands_wait_while_anything_is_dirty(aof_node):
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = held_write(aof_node, b"SET somewhere 1\r\n")
    scanner = RawClient(aof_node.nodes[0].port)
    scanner.send(b"DBSIZE\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2, what="DBSIZE held")
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert scanner.read_exactly_reply(4) == b":1\r\n"


def test_transactions_and_flushes_are_gated(aof_node):
    r = aof_node.client()
    r.set("x", "1")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    c = RawClient(aof_node.nodes[0].port)
    c.send(b"MULTI\r\nSET a 1\r\nINCR a\r\nEXEC\r\n")
    assert c.read_exactly_reply(23) == b"+OK\r\n+QUEUED\r\n+QUEUED\r\n"
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="EXEC held")
    assert nothing_arrived(c)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert c.read_exactly_reply(13) == b"*2\r\n+OK\r\n:2\r\n"

    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    flusher = RawClient(aof_node.nodes[0].port)
    flusher.send(b"FLUSHDB\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="FLUSHDB held")
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(b"EXISTS x\r\n")             # x was committed, but its database was flushed
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2, what="EXISTS held")
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert flusher.read_exactly_reply(5) == b"+OK\r\n"
    assert reader.read_exactly_reply(4) == b":0\r\n"


def test_swapdb_move_and_copy_dirty_the_other_database(aof_node):
    r = aof_node.client()
    r.set("committed", "1")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    swapper = RawClient(aof_node.nodes[0].port)
    swapper.send(b"SWAPDB 0 1\r\n")              # db 1 now shows what db 0 held, and back
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="SWAPDB held")
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(b"SELECT 1\r\nGET committed\r\n")   # committed, but in a swapped database
    assert reader.read_exactly_reply(5) == b"+OK\r\n"
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2, what="GET held")
    assert nothing_arrived(reader)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert swapper.read_exactly_reply(5) == b"+OK\r\n"
    assert reader.read_exactly_reply(7) == b"$1\r\n1\r\n"

    # MOVE from db 1 back to db 0: the key is dirty in db 0, where a read must wait
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    mover = RawClient(aof_node.nodes[0].port)
    mover.send(b"SELECT 1\r\nMOVE committed 0\r\n")
    assert mover.read_exactly_reply(5) == b"+OK\r\n"
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="MOVE held")
    reader0 = RawClient(aof_node.nodes[0].port)
    reader0.send(b"TYPE committed\r\n")
    # and a MOVE that only *finds* the dirty key there (reply 0) reveals it: held too
    prober = RawClient(aof_node.nodes[0].port)
    prober.send(b"SELECT 2\r\nSET committed x\r\n")
    prober.read_exactly_reply(5)
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 3, what="SET held")
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert prober.read_exactly_reply(5) == b"+OK\r\n"
    assert mover.read_exactly_reply(4) == b":1\r\n"
    assert reader0.read_exactly_reply(9) == b"+string\r\n"

    # COPY to db 3 dirties the copy there; a MOVE from db 0 that only *finds* it (and
    # answers 0) reveals an uncommitted key of db 3: its reply waits too
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    copier = RawClient(aof_node.nodes[0].port)
    copier.send(b"COPY committed committed DB 3\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="COPY held")
    finder = RawClient(aof_node.nodes[0].port)
    finder.send(b"MOVE committed 3\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2, what="MOVE held")
    assert nothing_arrived(finder)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert copier.read_exactly_reply(4) == b":1\r\n"
    assert finder.read_exactly_reply(4) == b":0\r\n"


def test_keyspace_notifications_wait_for_durability(aof_node):
    r = aof_node.client()
    r.config_set("notify-keyspace-events", "KEA")
    p = aof_node.client().pubsub()
    p.psubscribe("__keyevent@0__:*")
    wait_for(lambda: p.get_message(timeout=0.1) is not None, what="psubscribe confirmation")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = held_write(aof_node, b"SET note 1\r\n")
    assert p.get_message(timeout=0.2) is None            # not yet: the write is not durable
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    message = wait_for(lambda: p.get_message(timeout=0.2), what="the notification")
    assert message["channel"] == "__keyevent@0__:set" and message["data"] == "note"
    p.close()


def test_back_pressure_stops_reading_a_client_with_too_much_held(aof_node):
    r = aof_node.client()
    r.config_set("reply-blocking-max-held-bytes", "1kb")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    total = 20_000
    flood = RawClient(aof_node.nodes[0].port)
    sender = threading.Thread(target=flood.send,
                              args=(b"".join(b"SET k%d v\r\n" % i for i in range(total)),))
    sender.start()
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_held_bytes"] >= 1024, what="held output")
    executed = r.info("keyspace")["db0"]["keys"]
    # The node stopped reading this client once its held output passed the limit:
    # what it holds is bounded by the limit plus one read, not by what the client sent.
    assert executed < total and reply_blocking_info(aof_node)["reply_blocking_held_bytes"] < 5 * total
    assert r.ping() is True                             # other clients are unaffected
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert flood.read_exactly_reply(5 * total) == b"+OK\r\n" * total
    sender.join(10)
    assert r.dbsize() == total


def test_failing_disk_never_acknowledges_and_recovers(aof_node):
    node = aof_node.nodes[0]
    r = aof_node.client()
    r.set("before", "1")
    node.fail_disk()
    with pytest.raises(redis.ResponseError, match="MISCONF Errors writing to the AOF file: "
                                                  "Input/output error"):
        r.set("during", "1")
    with pytest.raises(redis.ResponseError, match="MISCONF"):
        r.set("during2", "1")                          # later writes: refused at once
    assert r.get("before") == "1"                      # reads of committed data work
    node.heal_disk()
    wait_for(lambda: _write_works(r), what="the node to recover with the disk")
    assert reply_blocking_info(aof_node)["reply_blocking_uncommitted_keys"] == 0


def test_switching_write_behind_off_on_a_failing_disk_leaves_no_hole_in_the_aof(tmp_path):
    """A write the failing disk refused (MISCONF: outcome unknown) is still in memory.
    Switching to ``everysec`` then must hand its bytes back to the inline AOF writer, so
    that once the disk heals the file holds every write, in order, exactly once."""
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path)) as c:
        node, r = c.nodes[0], c.client()
        r.set("before", "1")
        node.fail_disk()
        with pytest.raises(redis.ResponseError, match="MISCONF"):
            r.incr("counter")                          # executed, never acknowledged
        r.config_set("appendfsync", "everysec")        # write-behind off, disk still failing
        node.heal_disk()
        wait_for(lambda: _write_works(r), what="the inline AOF writer to recover")
        r.incr("counter")
        wait_for(lambda: r.execute_command("WAITAOF", 1, 0, 100)[0] == 1,
                 what="the everysec fsync to cover the writes")
        node.kill(power_loss=True)
        node.restart()
        r = c.client()
        assert r.get("before") == "1"
        assert r.get("counter") == "2"                 # both INCRs, once each
        assert r.get("after") == "1"


def _write_works(r) -> bool:
    try:
        return r.set("after", "1") is True
    except redis.ResponseError:
        return False


def test_debug_lever_errors(aof_node):
    with pytest.raises(redis.ResponseError, match="No such reply-blocking provider"):
        aof_node.client().execute_command("DEBUG", "reply-blocking-pause", "raft")


def test_power_loss_never_loses_an_acknowledged_write_or_a_read_value(tmp_path):
    """The proof: concurrent writers and readers, a power cut at a random moment."""
    rng = random.Random(2)
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path)) as c:
        node = c.nodes[0]
        acknowledged, observed = [], []
        stop = threading.Event()

        def writer(w):
            client = c.client(socket_timeout=2)
            i = 0
            while not stop.is_set():
                key = f"w{w}:{i}"
                try:
                    if client.set(key, i):
                        acknowledged.append(key)
                    value = client.get(f"w{(w + 1) % 4}:{max(0, i - 1)}")
                    if value is not None:
                        observed.append((f"w{(w + 1) % 4}:{max(0, i - 1)}", value))
                except redis.RedisError:
                    return
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acknowledged) > 200 + rng.randrange(200), what="some writes")
        node.kill(power_loss=True)
        stop.set()
        for t in threads:
            t.join(5)
        node.restart()
        r = c.client()
        lost = [k for k in acknowledged if r.get(k) is None]
        vanished_reads = [(k, v) for k, v in observed if r.get(k) != v]
        assert lost == [] and vanished_reads == []
        assert len(acknowledged) > 200


def test_demotion_disconnects_clients_waiting_on_the_gate(aof_node):
    with wb.Cluster(nodes=1) as other:
        r = aof_node.client()
        r.execute_command("DEBUG", "reply-blocking-pause", "aof")
        waiting = RawClient(aof_node.nodes[0].port)
        waiting.send(b"SET k v\r\n")
        wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="hold")
        r.execute_command("REPLICAOF", "127.0.0.1", other.nodes[0].port)
        # never told "+OK" for a write that was not made durable: the connection just ends
        assert waiting.read_until_closed() == b""
        assert reply_blocking_info(aof_node)["reply_blocking_enabled"] == 0


def test_turning_gating_off_releases_held_replies(aof_node):
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    waiting = RawClient(aof_node.nodes[0].port)
    waiting.send(b"SET k v\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="hold")
    r.config_set("appendfsync", "everysec")
    assert waiting.read_exactly_reply(5) == b"+OK\r\n"


def test_fsync_events_are_published(aof_node):
    from workbench import events as ev
    seen = []
    aof_node.events.subscribe(seen.append)
    aof_node.client().set("k", "v")
    wait_for(lambda: any(isinstance(e, ev.FsyncDone) for e in seen), what="FsyncDone")
    assert any(isinstance(e, ev.FsyncStarted) for e in seen)
    assert any(isinstance(e, ev.RepliesReleased) for e in seen)


def test_a_sort_by_pattern_waits_for_the_keys_it_reaches(aof_node):
    """SORT ... BY w_* reads keys its arguments do not name: held while one is uncommitted."""
    r = aof_node.client()
    r.rpush("ids", "1", "2")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = held_write(aof_node, b"SET w_1 9\r\n")
    sorter = RawClient(aof_node.nodes[0].port)
    sorter.send(b"SORT ids BY w_*\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_read_blocked_count"] >= 1,
             what="the SORT to be held")
    assert nothing_arrived(sorter)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert sorter.read_exactly_reply(14) == b"*2\r\n$1\r\n2\r\n$1\r\n1\r\n"
    assert writer.read_exactly_reply(5) == b"+OK\r\n"


def test_a_movable_key_read_waits_for_its_uncommitted_key(aof_node):
    r = aof_node.client()
    r.zadd("z1", {"a": 1})
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = held_write(aof_node, b"ZADD z2 2 b\r\n")
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(b"ZUNION 2 z1 z2\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_read_blocked_count"] >= 1,
             what="the ZUNION to be held")
    assert nothing_arrived(reader)
    assert r.zcard("z1") == 1                           # a read of a clean key goes at once
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert reader.read_exactly_reply(14) == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert writer.read_exactly_reply(4) == b":1\r\n"
