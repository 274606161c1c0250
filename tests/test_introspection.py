"""TIME, LASTSAVE, OBJECT, MEMORY, LATENCY, SLOWLOG and the DEBUG subcommands test suites
use: side by side with a real redis-server where the replies are comparable."""

from __future__ import annotations

import time

import pytest
import redis

import workbench as wb
from conftest import wait_for
from differential_helpers import both, outcome, redis_server, run_side_by_side  # noqa: F401
from workbench.server.commands_introspection import trimmed

pytestmark = pytest.mark.compat


def test_time_and_lastsave(both):
    ours, theirs = both
    seconds, micros = ours.execute_command("TIME")
    assert abs(int(seconds) - time.time()) < 5 and 0 <= int(micros) < 1_000_000
    assert abs(ours.lastsave().timestamp() - time.time()) < 60
    run_side_by_side(ours, theirs, ["TIME x", "LASTSAVE x"])


def test_object_encodings_as_redis_server(both):
    """Strings, intsets, hashes and big sets: Redis 7.0 and Valkey name them alike."""
    ours, theirs = both
    script = ["SET i 12345", "SET neg -7", "SET zero 0", "SET lead 007", "SET plus +5",
              "SET e " + "x" * 44, "SET r " + "x" * 45, "SET big 123456789012345678901",
              "SADD ints 1 2 3", "HSET h f v", "HSET hbig f " + "v" * 65,
              "SADD bigset " + " ".join("m%d" % i for i in range(200)),
              "SADD manyints " + " ".join(str(i) for i in range(600))]
    run_side_by_side(ours, theirs, script)
    for key in ["i", "neg", "zero", "lead", "plus", "e", "r", "big", "ints", "h", "hbig",
                "bigset", "manyints", "missing"]:
        assert outcome(ours, f"OBJECT ENCODING {key}") == outcome(theirs, f"OBJECT ENCODING {key}"), key
        assert outcome(ours, f"OBJECT REFCOUNT {key}") == outcome(theirs, f"OBJECT REFCOUNT {key}"), key
    run_side_by_side(ours, theirs, [
        "OBJECT", "OBJECT foo", "OBJECT ENCODING", "OBJECT ENCODING a b", "OBJECT HELP x",
        "OBJECT FREQ i", "OBJECT HELP", "OBJECT IDLETIME missing",
        "SADD ints 4", "OBJECT ENCODING ints", "HSET hbig f v", "OBJECT ENCODING hbig"])


def test_encodings_valkey_8_names_and_thresholds(both):
    """Where Valkey 8 differs from Redis 7.0 (small sets of strings are listpacks, small
    lists listpacks): Valkey's names, its thresholds, and no conversion back."""
    ours, _ = both
    ours.sadd("s", "a", "b")
    assert ours.object("encoding", "s") == b"listpack"
    ours.sadd("ints", 1, 2)
    assert ours.object("encoding", "ints") == b"intset"
    ours.sadd("ints", "x")
    assert ours.object("encoding", "ints") == b"listpack"
    ours.srem("ints", "x")
    assert ours.object("encoding", "ints") == b"listpack"      # no way back to an intset
    ours.rpush("l", *["x"] * 10)
    assert ours.object("encoding", "l") == b"listpack"
    ours.config_set("list-max-ziplist-size", "4")           # the legacy alias
    assert ours.config_get("list-max-listpack-size") == {"list-max-listpack-size": "4"}
    assert ours.object("encoding", "l") == b"quicklist"
    ours.ltrim("l", 0, 2)
    assert ours.object("encoding", "l") == b"quicklist"       # not below half yet
    ours.ltrim("l", 0, 1)
    assert ours.object("encoding", "l") == b"listpack"        # Valkey converts lists back
    ours.config_set("set-max-listpack-entries", "3")
    ours.sadd("s", "c", "d")
    assert ours.object("encoding", "s") == b"hashtable"
    ours.srem("s", "c", "d")
    assert ours.object("encoding", "s") == b"hashtable"       # a set never goes back
    ours.delete("s")
    ours.sadd("s", "a")
    assert ours.object("encoding", "s") == b"listpack"        # a new value starts compact
    assert set(ours.config_get("*ziplist*")) == {
        "list-max-ziplist-size", "hash-max-ziplist-entries", "hash-max-ziplist-value",
        "zset-max-ziplist-entries", "zset-max-ziplist-value"}


def test_object_freq_needs_an_lfu_policy(both):
    ours, theirs = both
    for client in both:
        client.set("k", "v")
        client.config_set("maxmemory-policy", "allkeys-lfu")
    run_side_by_side(ours, theirs, ["OBJECT IDLETIME k"])
    assert isinstance(ours.object("freq", "k"), int)


def test_object_idletime_follows_access_but_not_a_no_touch_client():
    with wb.Cluster(nodes=1) as c:
        r, quiet = c.client(), c.client()
        r.set("k", "v")
        assert r.object("idletime", "k") <= 1
        c.nodes[0].server.key_access[(0, b"k")] -= 100     # as if untouched for 100 s
        assert r.object("idletime", "k") >= 100
        quiet.execute_command("CLIENT", "NO-TOUCH", "ON")
        quiet.get("k")
        assert r.object("idletime", "k") >= 100            # a NO-TOUCH read leaves it
        quiet.execute_command("CLIENT", "NO-TOUCH", "OFF")
        quiet.get("k")
        assert r.object("idletime", "k") <= 1


def test_memory_usage_and_errors(both):
    ours, theirs = both
    run_side_by_side(ours, theirs, [
        "MEMORY USAGE", "MEMORY USAGE missing", "MEMORY USAGE missing SAMPLES x",
        "MEMORY USAGE missing SAMPLES -1", "MEMORY USAGE missing SAMPLES", "MEMORY foo",
        "MEMORY STATS x", "SET k v", "MEMORY USAGE k SAMPLES 0 extra"])
    ours.set("s", "x" * 1000)
    ours.rpush("l", *[b"y" * 100] * 50)
    ours.hset("h", mapping={f"f{i}": "v" * 10 for i in range(600)})
    assert 1000 < ours.memory_usage("s") < 1100
    assert 5000 < ours.memory_usage("l") < 6000
    assert ours.memory_usage("h", samples=0) > 600 * 40
    stats = ours.memory_stats()
    assert stats["keys.count"] == 4 and stats["dataset.bytes"] > 6000
    assert b"Sam" in ours.execute_command("MEMORY", "DOCTOR")
    assert ours.execute_command("MEMORY", "HELP")[0].startswith(b"MEMORY <subcommand>")


def test_latency_answers_as_a_quiet_server(both):
    ours, theirs = both
    run_side_by_side(ours, theirs, [
        "LATENCY LATEST", "LATENCY HISTORY command", "LATENCY RESET", "LATENCY RESET command",
        "LATENCY foo", "LATENCY LATEST x", "LATENCY HISTORY"])
    assert ours.execute_command("LATENCY", "HELP")[0].startswith(b"LATENCY <subcommand>")


def test_slowlog_as_redis_server(both):
    ours, theirs = both
    run_side_by_side(ours, theirs, [
        "SLOWLOG GET x", "SLOWLOG GET -2", "SLOWLOG GET 1 2", "SLOWLOG LEN 1", "SLOWLOG foo",
        "SLOWLOG HELP", "SLOWLOG RESET", "SLOWLOG LEN"])
    long_command = ["RPUSH", "list"] + ["e%d" % i for i in range(40)]
    long_value = ["SET", "big", "v" * 300]
    entries = []
    for client in both:
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        client.execute_command(*long_command)
        client.execute_command(*long_value)
        raw = client.execute_command("SLOWLOG", "GET", "-1")
        client.config_set("slowlog-log-slower-than", 10000)
        entries.append(raw)
    for mine, real in zip(*entries):
        assert mine[3] == real[3]                       # argv trimmed alike
        assert isinstance(mine[1], int) and isinstance(mine[2], int)
    assert [e[3][0] for e in entries[0]][:2] == [b"SET", b"RPUSH"]


def test_slowlog_threshold_and_length(both):
    ours, _ = both
    ours.slowlog_reset()
    ours.config_set("slowlog-log-slower-than", -1)
    ours.get("x")
    assert ours.slowlog_len() == 0
    ours.config_set("slowlog-log-slower-than", 0)
    ours.config_set("slowlog-max-len", 3)
    for i in range(10):
        ours.get("x%d" % i)
    assert ours.slowlog_len() == 3
    newest = ours.execute_command("SLOWLOG", "GET", "1")[0]
    assert newest[3] == [b"SLOWLOG", b"LEN"] or newest[3][0] == b"GET"
    ours.config_set("slowlog-log-slower-than", 1_000_000_000)
    ours.slowlog_reset()
    ours.execute_command("DEBUG", "SLEEP", "0")
    assert ours.slowlog_len() == 0


def test_slowlog_trims_like_valkey():
    assert trimmed([b"a"] * 33) == [b"a"] * 31 + [b"... (2 more arguments)"]
    assert trimmed([b"x" * 130]) == [b"x" * 128 + b"... (2 more bytes)"]


def test_debug_set_active_expire_and_object():
    with wb.Cluster(nodes=1, hz=100) as c:
        r = c.client()
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        r.set("k", "v", px=1)
        time.sleep(0.3)                         # 30 expiry cycles that must not run
        assert r.dbsize() == 1
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        wait_for(lambda: r.dbsize() == 0, what="the active expiry")
        r.set("s", "hello")
        line = r.execute_command("DEBUG", "OBJECT", "s")
        assert line.startswith("Value at:0x") and "encoding:embstr" in line
        assert "lru_seconds_idle:" in line and "refcount:1" in line
        with pytest.raises(redis.ResponseError, match="no such key"):
            r.execute_command("DEBUG", "OBJECT", "missing")


def test_debug_reload_rewrites_the_aof_and_survives_a_restart():
    with wb.Cluster(mode="async", nodes=1) as c:
        r = c.client()
        r.set("s", "v")
        r.rpush("l", "a", "b")
        r.hset("h", "f", "v")
        r.sadd("set", "m")
        r.set("t", "x", ex=1000)
        for _ in range(50):
            r.incr("counter")
        before = r.execute_command("DEBUG", "DIGEST")
        started = r.lastsave()
        assert r.execute_command("DEBUG", "RELOAD") == "OK"
        assert r.execute_command("DEBUG", "DIGEST") == before
        assert r.lastsave() >= started
        assert r.get("counter") == "50" and 990 < r.ttl("t") <= 1000
        node = c.nodes[0]
        node.kill()
        node.restart()
        r = c.client()
        assert r.execute_command("DEBUG", "DIGEST") == before
        assert r.info("persistence")["aof_loaded_commands"] < 20    # the rewritten file


def test_debug_reload_is_refused_where_unsafe(aof_node):
    r = aof_node.client()
    with pytest.raises(redis.ResponseError, match="write-behind"):
        r.execute_command("DEBUG", "RELOAD")


def test_debug_change_repl_id_and_digest_value():
    with wb.Cluster(nodes=1) as c:
        r = c.client()
        old = r.info("replication")["master_replid"]
        assert r.execute_command("DEBUG", "CHANGE-REPL-ID") == "OK"
        assert r.info("replication")["master_replid"] != old
        assert r.execute_command("DEBUG", "DIGEST") == "0" * 40
        r.sadd("a", *range(100))
        r.sadd("b", *reversed(range(100)))
        da, db, dm = r.execute_command("DEBUG", "DIGEST-VALUE", "a", "b", "missing")
        assert da == db != dm == "0" * 40
