"""A node starting from a damaged AOF: it loads the good prefix or refuses, saying where.

Whatever the bytes of the file, a start ends one of two ways: the node runs with the
commands of the file's intact part (a torn tail is cut off), or it refuses with an
AofError naming the file and the byte offset of the damage. Never a traceback from deep
inside a command handler.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

import workbench as wb
from workbench.resp import encode_command
from workbench.storage import AofError, load, scan_aof

SET_A = encode_command([b"SET", b"a", b"1"])
BAD_RECORDS = [
    (encode_command([b"NOSUCH", b"a"]), "Unknown command 'NOSUCH'"),
    (b"*1\r\n$3\r\nSET\r\n", "Wrong number of arguments (1) for 'set' command"),
    (encode_command([b"SELECT", b"99"]), "DB index 99 is out of range in SELECT (databases 16)"),
]


def plant(data_dir: str, data: bytes) -> str:
    os.makedirs(os.path.join(data_dir, "n1"), exist_ok=True)
    path = os.path.join(data_dir, "n1", "appendonly.aof")
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("bad, reason", BAD_RECORDS)
def test_a_cluster_refuses_to_start_on_a_record_no_server_writes(tmp_path, bad, reason):
    """Repro: a planted record naming an unknown command made the start fail with
    ``TypeError: AofError.__init__() missing ... 'path' and 'offset'``; one with the wrong
    arity (``*1\\r\\n$3\\r\\nSET\\r\\n``) with a bare ``IndexError`` from inside SET."""
    path = plant(str(tmp_path), SET_A + bad + SET_A)
    with pytest.raises(AofError) as err:
        wb.Cluster(nodes=1, data_dir=str(tmp_path))
    assert str(err.value).startswith(
        f"{reason} reading the append only file {path} at offset {len(SET_A)}:")
    assert (err.value.path, err.value.offset) == (path, len(SET_A))
    with open(path, "rb") as f:
        assert f.read() == SET_A + bad + SET_A       # left as found, for check-aof


def test_a_restart_refuses_a_bad_record_and_the_node_stays_down(tmp_path):
    with wb.Cluster(nodes=1, data_dir=str(tmp_path), appendfsync="always") as c:
        c.client().set("k", "v")
        node = c.nodes[0]
        node.kill()
        path = os.path.join(node.data_dir, "appendonly.aof")
        size = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(b"*1\r\n$3\r\nSET\r\n")
        with pytest.raises(AofError, match=rf"^Wrong number of arguments \(1\) for 'set' "
                                           rf"command reading the append only file "
                                           rf"{path} at offset {size}:"):
            node.restart()
        assert not node.alive


def test_the_cli_says_why_it_will_not_start_and_check_aof_agrees(tmp_path):
    path = plant(str(tmp_path), SET_A + b"*1\r\n$3\r\nSET\r\n")
    started = subprocess.run([sys.executable, "-m", "workbench", "cluster", "--nodes", "1",
                              "--data-dir", str(tmp_path), "--duration", "1"],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    assert started.stderr.startswith(
        f"workbench cluster: Wrong number of arguments (1) for 'set' command reading the "
        f"append only file {path} at offset {len(SET_A)}:")
    checked = subprocess.run([sys.executable, "-m", "workbench", "check-aof", path],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 1
    assert f"ok_up_to={len(SET_A)}," in checked.stdout and "is not valid" in checked.stdout


# -- random damage to a real AOF ------------------------------------------------------------

def write_a_real_aof(data_dir: str) -> bytes:
    """The AOF of a node that served strings, lists, hashes, sets, counters, expiries, a
    transaction and a second database, as the node itself wrote it."""
    with wb.Cluster(nodes=1, data_dir=data_dir, appendfsync="always") as c:
        r = c.client()
        for i in range(12):
            r.set(f"str:{i}:{i}", f"value-{i}" * (1 + i % 3))
        r.rpush("list", *[f"item{i}" for i in range(5)])
        r.hset("hash", mapping={"f1": "v1", "f2": "v2"})
        r.sadd("set", "m1", "m2", "m3")
        for _ in range(3):
            r.incr("counter")
        r.expire("str:0:0", 100_000)                  # logged as an absolute PEXPIREAT
        with r.pipeline(transaction=True) as p:
            p.set("in-multi:1", "x").lpush("list", "head").execute()
        other = c.client(db=3)
        other.set("db3:key", "three")
        r.delete("str:1:1")
        node = c.nodes[0]
        node.kill()
        with open(os.path.join(node.data_dir, "appendonly.aof"), "rb") as f:
            return f.read()


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, int, str]:
    """One random damage; returns the new bytes, the first offset it touches, its kind."""
    i = rng.randrange(len(data))
    kind = rng.choice(["replace", "replace", "insert", "delete", "truncate"])
    if kind == "replace":
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:], i, kind
    if kind == "insert":
        return data[:i] + bytes([rng.randrange(256)]) + data[i:], i, kind
    if kind == "delete":
        return data[:i] + data[i + 1:], i, kind
    return data[:i], i, kind


def test_random_damage_loads_the_intact_prefix_or_is_refused_naming_file_and_offset(tmp_path):
    """Repro: of 300 random byte mutations of a real AOF, 163 were refused cleanly and the
    rest started -- but some starts crashed with TypeError or IndexError from inside the
    replay instead of an AofError. Every outcome is now one of the two allowed ones."""
    original = write_a_real_aof(str(tmp_path / "source"))
    assert scan_aof(original).status == "ok"
    rng = random.Random(20240607)
    outcomes = {"refused": 0, "loaded": 0}
    with wb.Cluster(nodes=1, data_dir=str(tmp_path / "victim"), appendfsync="always") as c:
        node = c.nodes[0]
        node.kill()
        path = os.path.join(node.data_dir, "appendonly.aof")
        copy = str(tmp_path / "copy.aof")
        for attempt in range(250):
            damaged, at, kind = mutate(original, rng)
            intact = [cmd.argv for cmd in scan_aof(original[:at]).commands]
            for target in (path, copy):
                with open(target, "wb") as f:
                    f.write(damaged)
            try:
                node.restart()
            except AofError as err:
                outcomes["refused"] += 1
                assert err.path == path and 0 <= err.offset <= len(damaged), (attempt, kind)
                assert f"append only file {path} at offset {err.offset}" in str(err), attempt
                continue
            outcomes["loaded"] += 1
            loaded = load(copy, databases=16)       # what the node replayed, read again
            assert [cmd.argv for cmd in loaded.commands[:len(intact)]] == intact, (attempt, kind)
            if kind == "truncate":
                assert [cmd.argv for cmd in loaded.commands] == intact, attempt
            info = c.client().info("persistence")
            assert info["aof_loaded_commands"] == len(loaded.commands), attempt
            node.kill()
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 50, outcomes
