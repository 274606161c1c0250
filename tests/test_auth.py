"""Passwords on internal links: replicas (``masterauth``) and failover monitors (Sentinel's
``auth-pass``) authenticate to nodes that have ``requirepass`` set."""

from __future__ import annotations

import time

import pytest
import redis

import workbench as wb
from workbench.history import checkers
from workbench.history.model import ADD, FINAL_READ
from workbench.history.workloads import Recorder
from workbench.server.config import Config
from conftest import wait_for

PASSWORD = "s3cret"


def recorded_adds(recorder: Recorder, client, node: str, key: str, elements, wait=0):
    """SADD each element as one recorded operation (``ok`` only when the node said so)."""
    for element in elements:
        process = recorder.new_process()
        recorder.invoke(process, ADD, key, element, node=node)
        try:
            client.sadd(key, element)
            if wait:
                assert client.wait(wait, 2000) == wait
        except Exception as err:       # a crash mid-call: the outcome is unknown
            recorder.complete(process, "info", error=str(err), node=node)
            continue
        recorder.complete(process, "ok", element, node=node)


def test_a_cluster_with_a_password_fails_over():
    """Reproduction: ``Cluster(mode="async", nodes=3, requirepass="pw")``, kill the primary:
    no promotion in 20 s (0.5 s without a password). The monitors sent PING, SENTINEL,
    ROLE and REPLICAOF without AUTH and every reply was ``-NOAUTH``.

    The history: adds confirmed by ``WAIT 2`` before the crash, adds on the new primary
    after it; the final read must hold every acknowledged one."""
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300, requirepass=PASSWORD) as c:
        old = c.primary()
        recorder = Recorder()
        recorded_adds(recorder, c.client(old, password=PASSWORD), old.name, "s",
                      [f"before{i}" for i in range(10)], wait=2)
        crashed_at = time.monotonic()
        old.kill()
        new = wait_for(lambda: (p := c.current_primary()) and p is not old and p,
                       timeout=10, what="a replica to be promoted")
        took = time.monotonic() - crashed_at
        r = c.client(new, password=PASSWORD)
        recorded_adds(recorder, r, new.name, "s", [f"after{i}" for i in range(10)])
        process = recorder.new_process()
        recorder.invoke(process, FINAL_READ, "s", node=new.name)
        final = frozenset(r.smembers("s"))
        recorder.complete(process, "ok", final, node=new.name)

        verdict = checkers.lost_writes(recorder.history, {"s": final})
        assert verdict.valid, verdict
        assert verdict.details["ok"] == 20
        assert took < 5, f"promotion took {took:.1f} s with down_after_ms=300"
        log = "\n".join(line for n in c.nodes for line in n.log_lines)
        assert "cannot authenticate" not in log


def test_monitors_authenticate_again_after_their_connections_are_cut():
    """Every new monitor connection authenticates, not just the first one: cut every
    client connection of the replicas (the monitors' links among them), then crash the
    primary; the monitors must redial, AUTH, agree and promote."""
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300, requirepass=PASSWORD) as c:
        old = c.primary()
        for node in c.nodes:
            if node is old:
                continue
            r = c.client(node, password=PASSWORD)
            me = r.client_id()
            for line in r.execute_command("CLIENT", "LIST").splitlines():
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                if int(fields["id"]) != me:
                    r.execute_command("CLIENT", "KILL", fields["addr"])
        old.kill()
        new = wait_for(lambda: (p := c.current_primary()) and p is not old and p,
                       timeout=10, what="a replica to be promoted")
        assert c.client(new, password=PASSWORD).set("after", "1") is True


def test_a_replica_with_a_wrong_masterauth_never_syncs_and_says_why():
    """A replica must send ``masterauth`` (not its own ``requirepass``) to its primary, check
    the answer, and report a refusal with Valkey's log line; it keeps the link down and
    loads nothing. Setting the right password lets it sync: the failure was the password."""
    with wb.Cluster(nodes=2, down_after_ms=60_000, requirepass=PASSWORD) as c:
        replica = c.node("n2")
        c.client(replica, password=PASSWORD).config_set("masterauth", "wrong")
        replica.restart()                  # the link dials again, with the wrong password
        c.client("n1", password=PASSWORD).set("k", "v")
        expected = ("Unable to AUTH to PRIMARY: -WRONGPASS invalid username-password pair "
                    "or user is disabled.")
        wait_for(lambda: expected in "\n".join(replica.log_lines), timeout=5,
                 what="the replica to log the refused AUTH")
        wait_for(lambda: "monitor cannot authenticate to n1: WRONGPASS" in
                 "\n".join(replica.log_lines), timeout=5, what="its monitor to log it too")
        r = c.client(replica, password=PASSWORD)
        info = r.info("replication")
        assert info["master_link_status"] == "down" and info["master_sync_in_progress"] == 0
        assert r.get("k") is None
        assert "\n".join(replica.log_lines).count(expected) == 1   # logged once, not per retry

        r.config_set("masterauth", PASSWORD)   # read at the next dial, as Valkey does
        wait_for(lambda: r.get("k") == "v", timeout=5, what="the replica to sync")
        assert r.info("replication")["master_link_status"] == "up"


def test_masterauth_defaults():
    """A node outside a cluster sends no password; a Cluster given ``requirepass`` uses it
    as every node's ``masterauth`` unless told otherwise."""
    assert Config()["masterauth"] == ""
    with wb.Cluster(nodes=1, requirepass=PASSWORD) as c:
        assert c.client(password=PASSWORD).config_get("masterauth") == {"masterauth": PASSWORD}
    with wb.Cluster(nodes=1, requirepass=PASSWORD, masterauth="other") as c:
        assert c.client(password=PASSWORD).config_get("masterauth") == {"masterauth": "other"}


def test_the_clusters_own_clients_send_its_password():
    """Reproduction: on ``Cluster(requirepass="pw")`` every ``c.client()`` got NOAUTH
    unless the caller passed the password again, so the workloads recorded each write as a
    definite failure. The cluster's clients now authenticate; a stranger still may not."""
    with wb.Cluster(mode="async", nodes=1, requirepass=PASSWORD) as c:
        assert c.client().set("k", "v") is True
        with pytest.raises(redis.AuthenticationError):
            c.client(password=None).get("k")
