"""The AOF on a real disk: restarts, crashes, power loss, torn and corrupt files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import workbench as wb
from workbench.storage import AofError


def aof_path(cluster, name="n1"):
    return os.path.join(cluster.node(name).data_dir, "appendonly.aof")


def test_restart_reloads_everything_from_the_aof(node1):
    r = node1.client()
    r.set("s", "v")
    r.hset("h", "f", "1")
    r.rpush("l", "a", "b")
    r.sadd("set", "x")
    r.set("gone", "1")
    r.delete("gone")
    node = node1.nodes[0]
    node.kill()                          # a crash: bytes handed to the OS survive it
    assert not node.alive
    node.restart()
    r = node1.client()
    assert r.get("s") == "v" and r.hget("h", "f") == "1"
    assert r.lrange("l", 0, -1) == ["a", "b"] and r.smembers("set") == {"x"}
    assert r.exists("gone") == 0
    assert node1.client().info("persistence")["aof_loaded_commands"] > 0


@pytest.mark.parametrize("policy", ["everysec", "no"])
def test_power_loss_with_everysec_or_no_loses_acknowledged_writes(tmp_path, policy):
    with wb.Cluster(nodes=1, data_dir=str(tmp_path)) as c:
        r = c.client()
        r.set("old", "1")
        assert r.execute_command("WAITAOF", 1, 0, 3000) == [1, 0]   # fsynced for sure
        r.config_set("appendfsync", policy)
        acked = [f"k{i}" for i in range(100) if r.set(f"k{i}", i)]
        node = c.nodes[0]
        node.kill(power_loss=True)        # within the second: nothing since has been fsynced
        node.restart()
        r = c.client()
        survived = [k for k in acked if r.get(k) is not None]
        assert r.get("old") == "1"
        assert len(survived) < len(acked), f"{policy} must lose the un-fsynced tail"


def test_power_loss_with_appendfsync_always_keeps_acknowledged_writes(tmp_path):
    with wb.Cluster(nodes=1, data_dir=str(tmp_path), appendfsync="always") as c:
        r = c.client()
        acked = [f"k{i}" for i in range(100) if r.set(f"k{i}", i)]
        c.nodes[0].kill(power_loss=True)
        c.nodes[0].restart()
        r = c.client()
        assert [k for k in acked if r.get(k) is None] == []


def stopped_node_with_two_writes(c):
    """Write a=1, b=2 (fsynced: appendfsync always), crash the node; its AOF path."""
    r = c.client()
    r.set("a", "1")
    r.set("b", "2")
    c.nodes[0].kill()
    return aof_path(c)


def test_truncated_tail_loads_with_valkeys_warning(tmp_path):
    with wb.Cluster(nodes=1, data_dir=str(tmp_path), appendfsync="always") as c:
        path = stopped_node_with_two_writes(c)
        node = c.nodes[0]
        with open(path, "ab") as f:
            f.write(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1")      # a torn last record
        node.restart()
        assert c.client().mget("a", "b", "c") == ["1", "2", None]
        log = "\n".join(node.log_lines)
        assert "!!! Warning: short read while loading the AOF file" in log
        assert "loaded anyway because aof-load-truncated is enabled" in log


def test_corrupt_record_refuses_to_start_naming_file_and_offset(tmp_path):
    with wb.Cluster(nodes=1, data_dir=str(tmp_path), appendfsync="always") as c:
        path = stopped_node_with_two_writes(c)
        node = c.nodes[0]
        data = bytearray(open(path, "rb").read())
        position = data.index(b"$1\r\na")
        data[position] = ord("!")
        open(path, "wb").write(data)
        with pytest.raises(AofError) as err:
            node.restart()
        assert path in str(err.value) and str(position) in str(err.value)
        assert not node.alive
        assert open(path, "rb").read() == bytes(data)       # nothing was "repaired" behind our back


def test_check_aof_cli_reports_and_fixes(tmp_path):
    path = tmp_path / "appendonly.aof"
    path.write_bytes(b"*2\r\n$3\r\nDEL\r\n$1\r\na\r\n*2\r\n$3\r\nDEL\r\n$1")
    run = [sys.executable, "-m", "workbench", "check-aof"]
    bad = subprocess.run(run + [str(path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "is not valid" in bad.stdout
    fixed = subprocess.run(run + ["--fix", str(path)], capture_output=True, text=True)
    assert fixed.returncode == 0 and "Successfully truncated AOF" in fixed.stdout
    good = subprocess.run(run + [str(path)], capture_output=True, text=True)
    assert good.returncode == 0 and "is valid" in good.stdout
