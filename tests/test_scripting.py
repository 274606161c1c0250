"""Lua scripts and functions: side by side with a real redis-server (replies, Lua<->RESP
conversions, error texts word for word, keyspace events), then what only the workbench
can show: atomicity, effects replication to a replica and the AOF, the sandbox limits.

redis-server 7.0.15 already writes script errors the Valkey 8 way
(``<error> script: <sha>, on @user_script:<line>.``), so the texts are compared as is.
Left out of the side-by-side table on purpose: ``REDIS_VERSION(_NUM)`` (the node says
7.2.4), ``math.random`` (Valkey's own PRNG), ``struct``/``cmsgpack`` (not available
here) and FUNCTION DUMP's payload (the workbench's own format).
"""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
import redis

import workbench as wb
from conftest import wait_for
from differential_helpers import both, keyspace_events, redis_server  # noqa: F401
from workbench.server import scripting, scripting_lua

pytestmark = pytest.mark.compat


def outcome(client, *command):
    try:
        return client.execute_command(*command)
    except redis.ResponseError as err:
        return ("error", type(err).__name__, str(err))


def side_by_side(ours, theirs, commands) -> None:
    for command in commands:
        assert outcome(ours, *command) == outcome(theirs, *command), command


CONVERSIONS = [
    ("EVAL", "return {1,'x',{ok='y'},{2,{3}}, 2.5, true, false}", 0),
    ("EVAL", "return {1, nil, 2}", 0), ("EVAL", "return {[1]=1, [3]=3}", 0),
    ("EVAL", "return {a=1}", 0), ("EVAL", "return {err=1}", 0), ("EVAL", "return {ok=1}", 0),
    ("EVAL", "return {err='x', ok='y'}", 0), ("EVAL", "return 3.99", 0),
    ("EVAL", "return -3.7", 0), ("EVAL", "return 1e20", 0), ("EVAL", "return 0/0", 0),
    ("EVAL", "return 2^53", 0), ("EVAL", "return true", 0), ("EVAL", "return false", 0),
    ("EVAL", "return nil", 0), ("EVAL", "return {ok='FINE'}", 0),
    ("EVAL", "return {err='BAD thing'}", 0), ("EVAL", "return {err='ERR has\\nnewline'}", 0),
    ("EVAL", "return {ok='a\\r\\nb'}", 0), ("EVAL", "return 'a\\r\\nb'", 0),
    ("EVAL", "return {double=3.5}", 0), ("EVAL", "return {map={a=1}}", 0),
    ("EVAL", "return {set={a=true}}", 0), ("EVAL", "return {big_number='123'}", 0),
    ("EVAL", "return redis.error_reply('My Error')", 0),
    ("EVAL", "return redis.error_reply('-FOO bar')", 0),
    ("EVAL", "return redis.error_reply('')", 0), ("EVAL", "return redis.error_reply()", 0),
    ("EVAL", "return redis.status_reply('xx')", 0), ("EVAL", "return redis.status_reply(12)", 0),
    ("EVAL", "local t = redis.error_reply('Z'); return {type(t), t.err}", 0),
    ("EVAL", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", 1, "k", "v", "w"),
    ("EVAL", "return redis.sha1hex('')", 0), ("EVAL", "return redis.sha1hex(12)", 0),
    ("EVAL", "return _VERSION", 0), ("EVAL", "return type(cjson)..type(bit)", 0),
    ("EVAL", "return cjson.encode({1,2,3})", 0), ("EVAL", "return cjson.decode('[1,2,3]')[2]", 0),
    ("EVAL", "return bit.band(7, 3) + bit.bor(1, 2) + bit.lshift(1, 4)", 0),
    ("EVAL", "return bit.tohex(255)", 0), ("EVAL", "return bit.bnot(0)", 0),
    ("EVAL", "return {redis.REPL_ALL, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_NONE, "
             "redis.LOG_DEBUG, redis.LOG_WARNING}", 0),
    ("EVAL", "return redis.log(redis.LOG_WARNING, 'hello')", 0),
    ("EVAL", "return redis.set_repl(redis.REPL_ALL)", 0),
    ("EVAL", "return redis.replicate_commands()", 0),
    ("EVAL", "return loadstring('return 1')()", 0),
    ("EVAL", "return getmetatable(_G) ~= nil", 0),
]

CALLS = [
    ("SET", "s", "abc"), ("RPUSH", "l", "a", "b"), ("HSET", "h", "f", "v"),
    ("EVAL", "return redis.call('type','s')", 0),
    ("EVAL", "local t = redis.call('type','s'); return t.ok", 0),
    ("EVAL", "return redis.call('get','nope')", 0),
    ("EVAL", "return type(redis.call('get','nope'))", 0),
    ("EVAL", "return redis.call('hgetall','h')", 0),
    ("EVAL", "redis.setresp(3); return redis.call('hgetall','h')", 0),
    ("EVAL", "redis.setresp(3); local t = redis.call('hgetall','h'); return type(t.map)", 0),
    ("EVAL", "redis.setresp(3); return redis.call('get','nope') == nil", 0),
    ("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", 1, "k", "v"),
    ("EVAL", "return redis.call('lpush', 'l2', 'x', 1, 2.5)", 0),
    ("EVAL", "return redis.call('lrange', 'l2', 0, -1)", 0),
    ("EVAL", "return redis.call('ping')", 0), ("EVAL", "return redis.call('echo','x')", 0),
    ("EVAL", "redis.call('select','1'); redis.call('set','indb1','1'); "
             "return redis.call('dbsize')", 0),
    ("EXISTS", "indb1"),
    ("EVAL", "return redis.call('exists','s','l')", 0),
    ("EVAL", "local e = redis.pcall('incr', 's'); return {type(e), e.err}", 0),
    ("EVAL", "return redis.pcall('incr', 's')", 0),
    ("EVAL", "local ok, e = pcall(redis.call, 'incr', 's'); return {tostring(ok), type(e), e}", 0),
    ("EVAL", "local ok,e = xpcall(function() redis.call('incr','s') end, "
             "function(x) return type(x) end); return e", 0),
    ("EVAL", "return {pcall(function() error({err='Y'}) end)}", 0),
    ("EVAL", "local ok, e = pcall(function() local x = nil + 1 end); return e", 0),
    ("EVAL", "return redis.pcall('nosuch')", 0), ("EVAL", "return redis.pcall('multi')", 0),
    ("EVAL", "return redis.pcall()", 0), ("EVAL", "return redis.pcall('set')", 0),
]

ERRORS = [
    ("SET", "s", "abc"),
    ("EVAL", "return 1", -1), ("EVAL", "return 1", 2, "a"), ("EVAL", "return 1", "x"),
    ("EVAL", "return 1", "-0"), ("EVAL", "return 1", " 1", "a"), ("EVAL", "return (", "x"),
    ("EVAL", "return (", 0), ("EVAL", "return x", 0), ("EVAL", "x = 1", 0),
    ("EVAL", "KEYS = 1", 0), ("EVAL", "redis = 1", 0), ("EVAL", "redis.call = 1", 0),
    ("EVAL", "string.foo = 1 return 1", 0), ("EVAL", "local r = rawset(_G, 'q', 1) return 1", 0),
    ("EVAL", "return _G.x", 0), ("EVAL", "return os", 0), ("EVAL", "return io", 0),
    ("EVAL", "return loadfile", 0), ("EVAL", "return dofile", 0), ("EVAL", "return print", 0),
    ("EVAL", "return debug", 0), ("EVAL", "return require", 0), ("EVAL", "return setfenv", 0),
    ("EVAL", "error('boom')", 0), ("EVAL", "error('x', 0)", 0), ("EVAL", "error()", 0),
    ("EVAL", "error({err='NOPE bad'})", 0), ("EVAL", "local function f() error('deep') end f()", 0),
    ("EVAL", "\n\nlocal a = nil + 1", 0),
    ("EVAL", "local ok,e = pcall(redis.call,'incr','s'); error(e)", 0),
    ("EVAL", "local e = redis.pcall('incr','s'); error(e)", 0),
    ("EVAL", "local e = redis.error_reply('Z'); error(e)", 0),
    ("EVAL", "return redis.call('incr','s')", 0),
    ("EVAL", "local function f() return redis.call('incr','s') end\nreturn f()", 0),
    ("EVAL", "return redis.call('set','s','1','ex','-1')", 0),
    ("EVAL", "return redis.call('nosuch')", 0), ("EVAL", "return redis.call('get')", 0),
    ("EVAL", "return redis.call()", 0), ("EVAL", "return redis.call(1.5)", 0),
    ("EVAL", "return redis.call('get', {})", 0),
    ("EVAL", "return redis.call('lrange', 'l2', 0, -1, true)", 0),
    ("EVAL", "return redis.call('incrby', 'n', 1.9)", 0),
    ("EVAL", "return redis.call('multi')", 0), ("EVAL", "return redis.call('blpop','l',0)", 0),
    ("EVAL", "return redis.call('eval','return 1','0')", 0),
    ("EVAL", "return redis.call('watch','x')", 0), ("EVAL", "return redis.call('subscribe','x')", 0),
    ("EVAL", "return redis.call('client','id')", 0), ("EVAL", "return redis.call('wait','0','0')", 0),
    ("EVAL", "return redis.call('script','load','return 1')", 0),
    ("EVAL", "return redis.call('function','list')", 0),
    ("EVAL", "return redis.call('config','get','maxmemory')", 0),
    ("EVAL", "redis.setresp(4)", 0), ("EVAL", "return redis.setresp()", 0),
    ("EVAL", "return redis.sha1hex()", 0),
    ("EVAL_RO", "return redis.call('set','a','b')", 1, "a"),
    ("EVAL_RO", "return redis.pcall('set','a','b')", 1, "a"),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set','x','1')", 0),
    ("EVAL", "#!lua\nreturn redis.call('set','x','1')", 0),
    ("EVAL", "#!lua flags=bogus\nreturn 1", 0), ("EVAL", "#!lua name=foo\nreturn 1", 0),
    ("EVAL", "#!luax\nreturn 1", 0), ("EVAL", "#!lua flags=\nreturn 1", 0),
    ("EVAL", "#!lua flags=no-writes,allow-stale\nreturn 1", 0), ("EVAL", "#!lua", 0),
    ("EVAL_RO", "#!lua\nreturn 1", 0),
]

SCRIPT_CACHE = [
    ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", 0), ("EVALSHA", "abc", 0),
    ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "x"),
    ("SCRIPT", "LOAD", "return 1"),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "abc"),
    ("SCRIPT", "EXISTS", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"),
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
    ("EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", 0),
    ("EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
    ("SCRIPT", "LOAD", "return ("), ("SCRIPT", "LOAD"), ("SCRIPT", "LOAD", "a", "b"),
    ("SCRIPT", "EXISTS"), ("SCRIPT", "KILL"), ("SCRIPT", "KILL", "x"), ("SCRIPT", "FOO"),
    ("SCRIPT", "FLUSH", "BAD"), ("SCRIPT", "FLUSH", "SYNC", "x"), ("SCRIPT", "HELP"),
    ("SCRIPT", "DEBUG", "no"), ("SCRIPT", "FLUSH"), ("SCRIPT", "FLUSH", "ASYNC"),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
]


@pytest.mark.parametrize("table", [CONVERSIONS, CALLS, ERRORS, SCRIPT_CACHE],
                         ids=["conversions", "calls", "errors", "script-cache"])
def test_scripts_answer_as_redis_server_does(both, table):
    ours, theirs = both
    theirs.script_flush()
    side_by_side(ours, theirs, table)


LIBRARY = ("#!lua name=mylib\n"
           "redis.register_function('myfunc', function(keys, args) "
           "return redis.call('set', keys[1], args[1]) end)\n"
           "redis.register_function{function_name='ro', callback=function(keys, args) "
           "return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}")

FUNCTIONS = [
    ("FUNCTION", "LOAD", LIBRARY), ("FUNCTION", "LOAD", LIBRARY),
    ("FUNCTION", "LOAD", "REPLACE", LIBRARY), ("FUNCTION", "LOAD", "BAD", "x"),
    ("FUNCTION", "LOAD", "return 1"), ("FUNCTION", "LOAD", "#!lua\nreturn 1"),
    ("FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"),
    ("FUNCTION", "LOAD", "#!lua name=bad\nredis.register_function('myfunc', function() return 1 end)"),
    ("FUNCTION", "LOAD", "#!lua name=bad2\nredis.call('set','x','y')"),
    ("FUNCTION", "LOAD", "#!lua name=bad3\nredis.register_function('f1', 1)"),
    ("FUNCTION", "LOAD", "#!lua name=bad4\nredis.register_function('f 1', function() end)"),
    ("FUNCTION", "LOAD", "#!lua name=bad5\nredis.register_function{function_name='f5', "
                         "callback=function() end, flags={'bogus'}}"),
    ("FUNCTION", "LOAD", "#!lua name=bad6\nredis.register_function('a', function() end) "
                         "redis.register_function('a', function() end)"),
    ("FUNCTION", "LOAD", "#!lua name=bad7\nreturn ("),
    ("FUNCTION", "LOAD", "#!lua name=bad8\nerror('x')"),
    ("FUNCTION", "LOAD", "#!lua name=b-9\nredis.register_function('f9', function() end)"),
    ("FUNCTION", "LOAD", "#!lua name=b10 foo=bar\nredis.register_function('f10', function() end)"),
    ("FUNCTION", "LOAD", "#!js name=b11\n"),
    ("FUNCTION", "LOAD", "#!lua name=b12\nredis.register_function('f12', function() end, 'x')"),
    ("FUNCTION", "LOAD", "#!lua name=b14\nredis.register_function{function_name='f14', "
                         "callback=function() end, other=1}"),
    ("FUNCTION", "LOAD", "#!lua name=b15\nredis.register_function()"),
    ("FUNCTION", "LOAD", "#!lua name=b17\nx = 1"),
    ("FUNCTION", "LOAD", "#!lua name=b18\nredis.register_function('f18', function() x = 1 end)"),
    ("FUNCTION", "LOAD", "#!lua name=b19\nredis.register_function('f19', "
                         "function(k, a) return redis.call('incr', 'k') end)"),
    ("FUNCTION", "LOAD", "#!lua name=b20\nredis.register_function('f20', "
                         "function(k, a) error('oops') end)"),
    ("FCALL", "myfunc", 1, "k", "v"), ("FCALL", "ro", 1, "k"), ("FCALL_RO", "ro", 1, "k"),
    ("FCALL_RO", "myfunc", 1, "k", "v"), ("FCALL", "nosuch", 0), ("FCALL", "nosuch", "x"),
    ("FCALL", "myfunc", -1), ("FCALL", "myfunc", 2, "k"), ("FCALL", "myfunc", "x"),
    ("FCALL", "f18", 0), ("FCALL", "f19", 0), ("FCALL", "f20", 0),
    ("FUNCTION", "LIST", "LIBRARYNAME", "my"), ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "b2*"),
    ("FUNCTION", "LIST", "BAD"), ("FUNCTION", "LIST", "LIBRARYNAME"),
    ("FUNCTION", "LIST", "WITHCODE", "WITHCODE"),
    ("FUNCTION", "DELETE", "nolib"), ("FUNCTION", "DELETE", "b19"), ("FUNCTION", "DELETE"),
    ("FUNCTION", "DELETE", "a", "b"), ("FUNCTION", "FLUSH", "BAD"), ("FUNCTION", "KILL"),
    ("FUNCTION", "HELP"), ("FUNCTION", "FOO"), ("FUNCTION",), ("FUNCTION", "LOAD"),
    ("FUNCTION", "STATS"), ("FUNCTION", "RESTORE", "x"), ("FUNCTION", "FLUSH", "ASYNC"),
    ("FUNCTION", "STATS"), ("FCALL", "myfunc", 1, "k", "v"),
]


def test_functions_answer_as_redis_server_does(both):
    ours, theirs = both
    theirs.function_flush()
    side_by_side(ours, theirs, FUNCTIONS)


def test_function_list_and_dump_restore_round_trip(both):
    ours, _ = both
    ours.execute_command("FUNCTION", "LOAD", LIBRARY)
    ours.execute_command("FUNCTION", "LOAD", "#!lua name=other\n"
                         "redis.register_function('twice', function(k, a) return a[1] * 2 end)")
    listed = sorted(ours.execute_command("FUNCTION", "LIST"), key=lambda lib: lib[b"library_name"])
    assert [lib[b"library_name"] for lib in listed] == [b"mylib", b"other"]
    assert listed[0][b"functions"][1] == {b"name": b"ro", b"description": b"reads",
                                          b"flags": [b"no-writes"]}
    payload = ours.execute_command("FUNCTION", "DUMP")
    ours.execute_command("FUNCTION", "FLUSH")
    assert ours.execute_command("FUNCTION", "RESTORE", payload) == b"OK"
    assert ours.execute_command("FCALL", "twice", 0, 21) == 42
    with pytest.raises(redis.ResponseError, match="already exists"):
        ours.execute_command("FUNCTION", "RESTORE", payload)
    assert ours.execute_command("FUNCTION", "RESTORE", payload, "REPLACE") == b"OK"


def test_a_script_fires_the_keyspace_events_its_commands_fire(both):
    ours, theirs = both
    script = ["EVAL redis.call('set','a','1');redis.call('incr','a');redis.call('del','a');"
              "redis.call('sadd','s','x');return(1) 0"]
    assert keyspace_events(ours, script) == keyspace_events(theirs, script)


# -- what only the workbench shows ---------------------------------------------------------

def test_a_script_is_atomic_no_client_sees_its_middle():
    with wb.Cluster(mode="async", nodes=1) as c:
        r, watcher = c.client(), c.client()
        r.set("n", 0)
        seen, done = [], threading.Event()

        def watch():
            while not done.is_set():
                seen.append(int(watcher.get("n")))

        thread = threading.Thread(target=watch)
        thread.start()
        try:
            for _ in range(300):
                r.eval("redis.call('incr', KEYS[1]); return redis.call('incr', KEYS[1])", 1, "n")
        finally:
            done.set()
            thread.join(10)
        assert seen and all(value % 2 == 0 for value in seen)
        assert int(r.get("n")) == 600


def keyspace_of(client) -> dict:
    """Every key of db 0 with its type and value, for comparing two nodes."""
    state = {}
    for key in client.keys("*"):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value = {"string": client.get, "set": client.smembers, "hash": client.hgetall,
                 "list": lambda k: client.lrange(k, 0, -1)}[kind](key)
        state[key] = (kind, value)
    return state


NONDETERMINISTIC_SCRIPTS = [
    # TIME and SRANDMEMBER/SPOP feed writes: the replica and the AOF must get the values
    ("redis.call('set', 'clock', redis.call('time')[1] .. '.' .. redis.call('time')[2]); "
     "return 1", 0),
    ("redis.call('sadd', 'pool', 'a', 'b', 'c', 'd', 'e', 'f'); return 1", 0),
    ("local m = redis.call('srandmember', 'pool'); redis.call('rpush', 'picked', m); return m", 0),
    ("local m = redis.call('spop', 'pool'); redis.call('hset', 'popped', m, 1); return m", 0),
    ("redis.call('spop', 'pool', 2); return redis.call('scard', 'pool')", 0),
    ("redis.call('select', 3); redis.call('set', 'elsewhere', 'x'); return 1", 0),
    ("redis.call('set', KEYS[1], ARGV[1]); redis.call('expire', KEYS[1], 1000); return 1",
     1, "ttl", "v"),
    ("redis.call('set', 'partial', '1'); return redis.call('incr', 'ttl')", 0),   # fails after a write
]


def run_nondeterministic_scripts(r) -> None:
    for script in NONDETERMINISTIC_SCRIPTS:
        try:
            r.eval(*script)
        except redis.ResponseError:
            pass
    pipe = r.pipeline(transaction=True)             # a script inside MULTI/EXEC
    pipe.eval("return redis.call('spop', 'pool')", 0)
    pipe.set("after-script", 1)
    pipe.execute()


def test_a_replica_applies_a_scripts_effects_and_ends_equal():
    with wb.Cluster(mode="async", nodes=2) as c:
        r = c.client()
        run_nondeterministic_scripts(r)
        r.execute_command("FUNCTION", "LOAD", LIBRARY)
        r.fcall("myfunc", 1, "from-function", "v")
        assert r.execute_command("WAIT", 1, 5000) == 1
        replica = c.client([n for n in c.nodes if n.name != c.primary().name][0])
        assert keyspace_of(replica) == keyspace_of(r)
        assert replica.execute_command("SELECT", 3) and replica.get("elsewhere") == "x"
        replica.execute_command("SELECT", 0)
        assert replica.fcall_ro("ro", 1, "from-function") == "v"    # the library too
        with pytest.raises(redis.ReadOnlyError, match="read only replica. script: "):
            replica.eval("return redis.call('set', 'x', 1)", 0)   # refused inside the script
        with pytest.raises(redis.ReadOnlyError, match="read only replica.$"):
            replica.fcall("myfunc", 1, "x", "y")          # a writing function: refused up front


def test_the_aof_replays_a_scripts_effects_and_keeps_the_libraries(tmp_path):
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path)) as c:
        r = c.client()
        run_nondeterministic_scripts(r)
        r.execute_command("FUNCTION", "LOAD", LIBRARY)
        r.fcall("myfunc", 1, "from-function", "v")
        before = keyspace_of(r)
        node = c.nodes[0]
        node.kill()
        node.restart()
        r = c.client()
        assert keyspace_of(r) == before
        assert r.fcall("ro", 1, "from-function") == "v"
        assert r.execute_command("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db") == [0]


def test_a_runaway_script_is_stopped_at_the_busy_threshold(monkeypatch):
    monkeypatch.setattr(scripting, "busy_reply_threshold", lambda server: 200)
    with wb.Cluster(mode="async", nodes=1) as c:
        r = c.client()
        with pytest.raises(redis.ResponseError, match="Script killed"):
            r.eval("redis.call('set', 'before', 1); while true do end", 0)
        with pytest.raises(redis.ResponseError, match="Script killed"):   # pcall cannot keep it
            r.eval("while true do pcall(function() while true do end end) end", 0)
        assert r.get("before") == "1" and r.ping()


def test_a_script_that_eats_memory_fails_alone(monkeypatch):
    monkeypatch.setattr(scripting_lua, "LUA_MAX_MEMORY", 16 * 2**20)
    with wb.Cluster(mode="async", nodes=1) as c:
        r = c.client()
        with pytest.raises(redis.ResponseError, match="not enough memory"):
            r.eval("local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 100) .. i end", 0)
        assert r.eval("return #string.rep('x', 1000)", 0) == 1000


def test_redis_cli_eval_runs_a_script_file(tmp_path):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not installed")
    script = tmp_path / "rate.lua"
    script.write_text("local n = redis.call('incr', KEYS[1])\n"
                      "if n == 1 then redis.call('expire', KEYS[1], ARGV[1]) end\nreturn n\n")
    with wb.Cluster(mode="async", nodes=1) as c:
        port = str(c.nodes[0].port)
        for expected in ("1", "2"):
            out = subprocess.run([cli, "-p", port, "--eval", str(script), "hits", ",", "60"],
                                 capture_output=True, text=True, timeout=10)
            assert out.stdout.strip() == f"(integer) {expected}" or out.stdout.strip() == expected
        wait_for(lambda: 0 < c.client().ttl("hits") <= 60, what="the expiry the script set")
