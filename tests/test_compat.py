"""The real redis-cli and redis-benchmark binaries against a node, unchanged."""

from __future__ import annotations

import subprocess

import pytest

import workbench as wb
from conftest import require_binary

pytestmark = pytest.mark.compat


def cli(port: int, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("redis-cli"), "-p", str(port), *args], input=stdin,
                          capture_output=True, text=True, timeout=30)


def test_redis_cli_commands_and_errors(node1):
    port = node1.nodes[0].port
    assert cli(port, "PING").stdout.strip() == "PONG"
    assert cli(port, "SET", "greeting", "hello world").stdout.strip() == "OK"
    assert cli(port, "GET", "greeting").stdout.strip() == "hello world"
    assert cli(port, "RPUSH", "l", "a", "b").stdout.strip() == "2"
    assert cli(port, "LRANGE", "l", "0", "-1").stdout.split() == ["a", "b"]
    assert "WRONGTYPE" in cli(port, "GET", "l").stdout
    assert "unknown command 'BOGUS'" in cli(port, "BOGUS").stdout
    assert "role:master" in cli(port, "INFO", "replication").stdout
    assert cli(port, "-3", "HGETALL", "nohash").returncode == 0


def test_redis_cli_pipe_mode_and_interactive_session(node1):
    port = node1.nodes[0].port
    piped = cli(port, stdin="SET a 1\nINCR a\nGET a\n")
    assert piped.stdout.split() == ["OK", "2", "2"]
    mass = "".join(f"*3\r\n$3\r\nSET\r\n${len(f'k{i}')}\r\nk{i}\r\n$1\r\nv\r\n" for i in range(500))
    result = cli(port, "--pipe", stdin=mass)
    assert "errors: 0, replies: 500" in result.stdout
    assert cli(port, "DBSIZE").stdout.strip() == "501"


def test_redis_cli_replication_view(cluster3):
    primary, replica = cluster3.node("n1").port, cluster3.node("n2").port
    cli(primary, "SET", "x", "1")
    assert cli(primary, "WAIT", "2", "2000").stdout.strip() == "2"
    role = cli(replica, "ROLE").stdout.split()
    assert role[0] == "slave" and role[3] == "connected"
    assert "READONLY" in cli(replica, "SET", "x", "2").stdout


def test_redis_benchmark_runs_clean(node1):
    port = node1.nodes[0].port
    result = subprocess.run(
        [require_binary("redis-benchmark"), "-p", str(port), "-t", "set,get,incr,lpush,rpop,sadd,hset,mset",
         "-n", "2000", "-c", "10", "-q", "--csv"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith('"') and
            not line.startswith('"test"')]
    tests = {row.split(",")[0].strip('"') for row in rows}
    assert {"SET", "GET", "INCR", "LPUSH", "RPOP", "SADD", "HSET"} <= tests
    assert all(float(row.split(",")[1].strip('"')) > 0 for row in rows)
    assert node1.client().dbsize() > 0


def test_redis_benchmark_pipelined(node1):
    port = node1.nodes[0].port
    result = subprocess.run([require_binary("redis-benchmark"), "-p", str(port), "-t", "set,get",
                             "-n", "5000", "-c", "5", "-P", "16", "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "SET:" in result.stdout and "GET:" in result.stdout


# redis-benchmark's default list (no -t): the names it prints, in its order
DEFAULT_BENCHMARK_TESTS = [
    "PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP",
    "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN", "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)", "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)", "LRANGE_600 (first 600 elements)", "MSET (10 keys)"]


@pytest.mark.parametrize("mode", ["async", "aof", "sync", "raft"])
def test_redis_benchmark_default_list_in_every_mode(mode):
    """Every test of redis-benchmark's default list completes, with no error reply: it
    stops at the first command a server refuses."""
    nodes = 1 if mode in ("async", "aof") else 3
    with wb.Cluster(mode=mode, nodes=nodes, record=False) as cluster:
        port = cluster.primary(timeout=20).port
        result = subprocess.run(
            [require_binary("redis-benchmark"), "-p", str(port), "-n", "200", "-c", "4",
             "-r", "1000", "-q", "--csv"],
            capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr
        assert "ERR" not in result.stdout + result.stderr, result.stdout + result.stderr
        rows = [line.split('","') for line in result.stdout.splitlines()
                if line.startswith('"') and not line.startswith('"test"')]
        assert [row[0].strip('"') for row in rows] == DEFAULT_BENCHMARK_TESTS
        assert all(float(row[1]) > 0 for row in rows)
        # 200 LPUSH + 200 RPUSH - 200 LPOP - 200 RPOP + 200 LPUSH (for LRANGE)
        assert cluster.client().llen("mylist") == 200
