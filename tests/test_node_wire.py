"""A node on a real socket, driven by the real redis-py client and by raw bytes."""

from __future__ import annotations

import redis
import pytest

from conftest import wait_for


def test_redis_py_resp3_and_resp2_clients_work(node1):
    r3 = node1.client()                       # redis-py 5+ speaks RESP3 when asked
    r2 = node1.client(protocol=2)
    assert r3.set("k", "v") is True
    assert r2.get("k") == "v"
    assert r3.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r2.hgetall("h") == {"a": "1", "b": "2"}
    assert r3.rpush("l", "x", "y", "z") == 3
    assert r2.lrange("l", 0, -1) == ["x", "y", "z"]
    assert r3.sadd("s", "m1", "m2") == 2
    assert r3.smembers("s") == {"m1", "m2"}
    assert r2.incr("n") == 1 and r2.incrby("n", 41) == 42
    assert r3.dbsize() == 5


def test_hello_reply_shape():
    import workbench as wb
    with wb.Cluster(nodes=1) as c:
        r = c.client(protocol=3)
        hello = r.execute_command("HELLO", "3")
        assert hello["server"] == "valkey" and hello["proto"] == 3 and hello["role"] == "master"
        with pytest.raises(redis.ResponseError, match="NOPROTO unsupported protocol version"):
            r.execute_command("HELLO", "4")


def test_error_texts_match_valkey(node1):
    r = node1.client(protocol=2)
    r.set("str", "x")
    cases = [
        (("GET",), "wrong number of arguments for 'get' command"),
        (("NOSUCHCMD", "a", "b"), "unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "),
        (("LPUSH", "str", "v"), "WRONGTYPE Operation against a key holding the wrong kind of value"),
        (("INCR", "str"), "value is not an integer or out of range"),
        (("EXEC",), "EXEC without MULTI"),
        (("SELECT", "99"), "DB index is out of range"),
    ]
    for args, text in cases:
        with pytest.raises(redis.ResponseError) as err:
            r.execute_command(*args)
        assert text in str(err.value), args


@pytest.mark.parametrize("payload, error", [
    (b"*1\r\n+PING\r\n", b"-ERR Protocol error: expected '$', got '+'\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b'SET "unbalanced v\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
])
def test_protocol_errors_close_only_that_client(node1, raw, payload, error):
    bad = raw()
    good = node1.client()
    bad.send(b"*1\r\n$4\r\nPING\r\n" + payload)
    assert bad.read_until_closed() == b"+PONG\r\n" + error   # earlier command ran, then closed
    assert good.ping() is True                              # everyone else is still served


def test_inline_commands_and_pipelines(node1, raw):
    c = raw()
    c.send(b'SET greeting "hello world"\r\nGET greeting\r\n*1\r\n$4\r\nPING\r\n')
    expected = b"+OK\r\n$11\r\nhello world\r\n+PONG\r\n"
    assert c.read_exactly_reply(len(expected)) == expected


def test_large_value_arrives_in_pieces(node1, raw):
    value = b"v" * 3_000_000
    c = raw()
    request = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value)
    for i in range(0, len(request), 65536):
        c.send(request[i:i + 65536])
    assert c.read_exactly_reply(5) == b"+OK\r\n"
    assert node1.client(decode_responses=False).strlen("big") == len(value)


def test_a_pipeline_whose_last_command_is_split_gets_every_reply(node1, raw):
    c = raw()
    whole = b"*1\r\n$4\r\nPING\r\n" * 3
    split = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n" + b"v" * 2000 + b"\r\n"
    c.send(whole + split[:40])
    assert c.read_exactly_reply(21) == b"+PONG\r\n" * 3
    c.send(split[40:])                       # exactly the rest: the reply must come now
    assert c.read_exactly_reply(5) == b"+OK\r\n"


def test_auth_required(node1):
    r = node1.client()
    r.config_set("requirepass", "s3cret")
    with pytest.raises(redis.AuthenticationError):
        node1.client().get("x")
    authed = node1.client(password="s3cret")
    assert authed.set("x", "1") is True
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        node1.client(password="wrong").ping()


def test_config_get_set_and_errors(node1):
    r = node1.client()
    assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert r.config_set("appendfsync", "always") is True
    assert r.config_get("append*")["appendfsync"] == "always"
    with pytest.raises(redis.ResponseError, match="argument\\(s\\) must be one of the following: "
                                                  "always, everysec, no"):
        r.config_set("appendfsync", "sometimes")
    with pytest.raises(redis.ResponseError, match="Unknown option"):
        r.config_set("no-such-option", "1")


def test_multi_exec_watch(node1):
    r = node1.client()
    other = node1.client()
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "1").incr("a").get("a")
    assert pipe.execute() == [True, 2, "2"]

    with r.pipeline() as p:
        p.watch("w")
        other.set("w", "changed")          # a concurrent write to a watched key
        p.multi()
        p.set("w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("w") == "changed"


@pytest.mark.parametrize("other_db_write", [["MOVE", "w", "1"], ["COPY", "src", "w", "DB", "1"],
                                            ["SWAPDB", "0", "1"]])
def test_a_write_into_another_database_breaks_a_watch_there(node1, other_db_write):
    watcher = redis.Redis(port=node1.nodes[0].port, db=1, decode_responses=True)
    other = node1.client()
    other.set("w", "from db 0")
    other.set("src", "copied")
    with watcher.pipeline() as p:
        p.watch("w")
        assert other.execute_command(*other_db_write) in (1, True, "OK")
        p.multi()
        p.set("w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    watcher.close()


def test_execabort_after_queue_time_error(node1, raw):
    c = raw()
    c.send(b"MULTI\r\nSET k\r\nEXEC\r\n")
    expected = (b"+OK\r\n-ERR wrong number of arguments for 'set' command\r\n"
                b"-EXECABORT Transaction discarded because of previous errors.\r\n")
    assert c.read_exactly_reply(len(expected)) == expected


def test_pubsub_and_keyspace_notifications(node1):
    r = node1.client()
    r.config_set("notify-keyspace-events", "KEA")
    p = node1.client().pubsub()
    p.psubscribe("__keyspace@0__:*")
    p.subscribe("news")
    confirmations = []
    wait_for(lambda: (m := p.get_message(timeout=0.1)) and confirmations.append(m)
             or len(confirmations) == 2, what="subscribe confirmations")
    assert r.publish("news", "hi") == 1
    r.set("watched", "1")
    messages = []
    wait_for(lambda: (m := p.get_message(timeout=0.1)) and messages.append(m) or
             any(m["type"] == "pmessage" and m["data"] == "set" for m in messages),
             what="a keyspace notification")
    assert any(m["type"] == "message" and m["data"] == "hi" for m in messages)
    p.close()


def test_client_commands_and_info(node1):
    r = node1.client()
    r.client_setname("teacher")
    assert r.client_getname() == "teacher"
    assert isinstance(r.client_id(), int)
    assert any(c["name"] == "teacher" for c in r.client_list())
    info = r.info()
    for field in ("redis_version", "connected_clients", "aof_enabled", "role",
                  "master_repl_offset", "total_commands_processed"):
        assert field in info
    assert r.command_count() > 60


def test_expiry_is_absolute_in_the_aof(node1):
    r = node1.client()
    r.set("ttl", "v", ex=100)
    assert 0 < r.ttl("ttl") <= 100
    node = node1.nodes[0]
    node1.runtime.call(lambda: node.server.flush_aof())
    with open(node.server.aof.path, "rb") as f:
        text = f.read()
    assert b"PXAT" in text and b"\r\nEX\r\n" not in text
