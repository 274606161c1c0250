"""``workbench`` on the command line, through the installed script: arguments refused
before anything runs (exit 2, a clear message, no traceback), the cluster's contract
about nodes and its data dir, and ``--config`` reaching every node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from workbench.cluster import SINGLE_NODE_ADVICE

WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def workbench(*args, cwd, timeout=60):
    return subprocess.run([WORKBENCH, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args, says", [
    (("shootout", "--clients", "0"), "--clients: must be at least 1"),
    (("shootout", "--duration", "-1"), "--duration: must be a positive number"),
    (("shootout", "--duration", "nan"), "--duration: must be a positive number"),
    (("shootout", "--nodes", "0"), "--nodes: must be at least 1"),
    (("raft-campaign", "--seeds", "-1"), "--seeds: must be at least 1"),
    (("raft-campaign", "--first-seed", "-3"), "--first-seed: must be at least 0"),
    (("shootout", "--html", "/nonexistent/x.html"), "--html /nonexistent/x.html: no such directory"),
    (("shootout", "--json", "."), "--json .: is a directory"),
    (("shootout", "--config", "appendfsnc=always"), "unknown config 'appendfsnc'"),
    (("shootout", "--config", "appendfsync=sometimes"), "appendfsync"),
    (("shootout", "--config", "appendfsync"), "--config takes NAME=VALUE"),
    (("shootout", "--modes", "async,aof", "--schedule", "wait-then-failover", "--nodes", "5"),
     "mode 'aof' runs on 1 node(s): wait-then-failover needs at least 5 nodes"),
    (("shootout", "--modes", "async,paxos"), "accepted: async, aof"),
    (("shootout", "--schedule", "meteor"), "accepted: split-brain"),
    (("cluster", "--duration", "-5"), "--duration: must be a positive number"),
    (("cluster", "--config", "port=7000"), "the cluster sets port for each node itself"),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, args, says):
    """`--html /nonexistent/x.html` failed with a traceback after the whole run;
    `--clients 0`, a negative `--duration`, `raft-campaign --seeds -1` were accepted;
    `--modes async,aof --schedule wait-then-failover --nodes 5` ran async, then died."""
    done = workbench(*args, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert says in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_cluster_refuses_a_replicated_aof_and_defaults_to_the_modes_size(tmp_path):
    """`workbench cluster --mode aof --nodes 3` was accepted; it must refuse with the
    Cluster's message, and without --nodes an aof cluster is its one node."""
    done = workbench("cluster", "--mode", "aof", "--nodes", "3", cwd=tmp_path)
    assert done.returncode == 2 and SINGLE_NODE_ADVICE in done.stderr
    done = workbench("cluster", "--mode", "aof", "--duration", "0.2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "aof cluster of 1 node(s)" in done.stdout and " n2 " not in done.stdout


def start_cluster(tmp_path, *args):
    """``workbench cluster`` in the background; returns (process, ports) once it serves."""
    ready = tmp_path / "ready"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen([WORKBENCH, "cluster", "--ready-file", str(ready), *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for _ in range(600):                                   # up to 30 s
        if ready.exists() or proc.poll() is not None:
            break
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            pass
    assert ready.exists(), proc.communicate(timeout=10)
    return proc, [int(p) for p in ready.read_text().split()]


def stop(proc) -> str:
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def test_cluster_says_what_happens_to_its_data_dir(tmp_path):
    """Ctrl-C silently deleted the data dir. The start message says where the data is and
    whether it is kept; --data-dir keeps it, and says whether it already existed."""
    proc, _ = start_cluster(tmp_path, "--mode", "aof")
    out = stop(proc)
    temp = out.split("data in ", 1)[1].split(":", 1)[0]
    assert "deleted when the cluster stops (--data-dir DIR keeps the files)" in out
    assert not os.path.exists(temp)

    kept = tmp_path / "kept"
    proc, (port,) = start_cluster(tmp_path, "--mode", "aof", "--data-dir", str(kept))
    redis.Redis(host="127.0.0.1", port=port).set("k", "survives")
    out = stop(proc)
    assert f"data in {kept}: in a new directory made for --data-dir; kept" in out
    assert (kept / "n1").is_dir()

    proc, (port,) = start_cluster(tmp_path, "--mode", "aof", "--data-dir", str(kept))
    value = redis.Redis(host="127.0.0.1", port=port).get("k")
    out = stop(proc)
    assert "in the existing directory given by --data-dir" in out
    assert value == b"survives"


def test_cluster_config_reaches_every_node(tmp_path):
    proc, ports = start_cluster(tmp_path, "--mode", "async", "--down-after-ms", "5000",
                                "--config", "appendfsync=always",
                                "--config", "min-replicas-max-lag=7")
    try:
        seen = [redis.Redis(host="127.0.0.1", port=p, decode_responses=True).config_get("*")
                for p in ports]
    finally:
        out = stop(proc)
    assert len(ports) == 3 and "async cluster of 3 node(s)" in out
    assert all(c["appendfsync"] == "always" and c["min-replicas-max-lag"] == "7" for c in seen)


def test_shootout_writes_json_with_nodes_and_config(tmp_path):
    done = workbench("shootout", "--quiet", "--duration", "2", "--modes", "aof",
                     "--schedule", "power-loss", "--config", "hz=20", "--json", "out.json",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    (run,) = doc["runs"]
    assert (run["mode"], run["nodes"], run["config"]) == ("aof", 1, {"hz": "20"})
    assert "lost_acknowledged_writes" in done.stdout
    assert "note: every node of every mode ran with hz=20" in done.stdout
