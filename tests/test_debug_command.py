"""DEBUG: Valkey's ``enable-debug-command`` gate, and arguments that must never break a
connection (``DEBUG SLEEP nan``)."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import redis

import workbench as wb
from workbench.server.commands_admin import (DEBUG_NOT_ALLOWED, protected_refusal,
                                             sleep_microseconds, strtod)
from workbench.server.config import Config
from conftest import RawClient

NOT_ALLOWED = ('DEBUG command not allowed. If the enable-debug-command option is set to '
               '"local", you can run it from a local connection, otherwise you need to set '
               'this option in the configuration file, and then restart the server.')


def test_debug_is_refused_without_the_config_with_valkeys_text():
    """Reproduction: DEBUG ran for every client of every node, while Valkey ships with
    ``enable-debug-command no``. Now a node's default is ``no``; DEBUG is refused before
    authentication (Valkey's order), so a password does not change the answer."""
    assert Config()["enable-debug-command"] == "no"
    with wb.Cluster(nodes=1, enable_debug_command="no", requirepass="pw") as c:
        raw = RawClient(c.nodes[0].port)
        raw.send(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n0\r\n")
        expected = b"-ERR " + NOT_ALLOWED.encode() + b"\r\n"
        assert raw.read_exactly_reply(len(expected)) == expected
        r = c.client(password="pw")
        with pytest.raises(redis.ResponseError) as refused:
            r.execute_command("DEBUG", "SLEEP", "0")
        assert str(refused.value) == NOT_ALLOWED
        assert "protected" in r.execute_command("COMMAND", "INFO", "debug")["debug"]["flags"]


def test_a_cluster_enables_debug_for_local_clients_and_a_password_protects_it():
    with wb.Cluster(nodes=1, requirepass="pw") as c:
        with pytest.raises(redis.AuthenticationError):
            c.client(password=None).execute_command("DEBUG", "SLEEP", "0")   # NOAUTH
        r = c.client()                                        # sends the cluster's password
        assert r.config_get("enable-debug-command") == {"enable-debug-command": "local"}
        assert r.execute_command("DEBUG", "SLEEP", "0") == "OK"
    with wb.Cluster(nodes=1, enable_debug_command="yes") as c:
        assert c.client().execute_command("DEBUG", "SLEEP", "0") == "OK"


def test_enable_debug_command_is_immutable_and_checked():
    with wb.Cluster(nodes=1) as c:
        r = c.client()
        with pytest.raises(redis.ResponseError) as refused:
            r.config_set("enable-debug-command", "yes")
        assert str(refused.value) == ("CONFIG SET failed (possibly related to argument "
                                      "'enable-debug-command') - can't set immutable config")
        assert r.config_get("enable-debug-command") == {"enable-debug-command": "local"}
    with pytest.raises(ValueError, match="must be one of the following: no, yes, local"):
        wb.Cluster(nodes=1, enable_debug_command="sometimes")


@pytest.mark.parametrize("setting, addr, allowed", [
    ("no", "127.0.0.1:5000", False), ("yes", "10.1.2.3:5000", True),
    ("local", "127.0.0.1:5000", True), ("local", "::1:5000", True),
    ("local", "10.1.2.3:5000", False), ("local", "?", False)])
def test_who_may_run_debug(setting, addr, allowed):
    server = SimpleNamespace(config=Config({"enable-debug-command": setting}))
    refusal = protected_refusal(server, SimpleNamespace(addr=addr))
    assert refusal is (None if allowed else DEBUG_NOT_ALLOWED)


@pytest.mark.parametrize("raw, seconds", [
    (b"1.5", 1.5), (b"  2", 2.0), (b"+.5", 0.5), (b"1e-3", 0.001), (b"3abc", 3.0),
    (b"abc", 0.0), (b"", 0.0), (b"\xff", 0.0), (b"1e", 1.0), (b"0x1p-4", 0.0625),
    (b"0x", 0.0), (b"-1", -1.0), (b"inf", math.inf), (b"-Infinity", -math.inf),
    (b"1e999", math.inf)])
def test_debug_sleep_reads_its_argument_as_strtod_does(raw, seconds):
    assert strtod(raw) == seconds
    assert math.isnan(strtod(b"nan")) and math.isnan(strtod(b"-NaN(1)"))


def test_sleep_times_valkey_refuses_to_sleep_for():
    """``long long utime = dtime * 1000000`` on x86-64: out of range is LLONG_MIN."""
    assert sleep_microseconds(0.25) == 250_000
    for seconds in (math.nan, math.inf, -math.inf, 1e300, -1.0):
        assert sleep_microseconds(seconds) < 0


@pytest.fixture(scope="module")
def gated():
    """One aof-mode node: every DEBUG hook (the reply-blocking levers too) is live."""
    with wb.Cluster(mode="aof", nodes=1) as c:
        yield c


def test_debug_sleep_with_a_bad_time_answers_at_once(gated):
    """Reproduction: ``DEBUG SLEEP nan`` dropped the connection (the event loop refused
    a NaN timer); ``inf`` never answered; ``abc`` got an error Valkey never sends.
    Valkey reads the time with ``strtod`` and its ``nanosleep`` refuses a time that is
    negative or not a number, so it answers +OK at once to all of these."""
    r = gated.client(socket_timeout=2)
    for bad in ("nan", "inf", "-inf", "-1", "abc", "", "1e300", "-0", "1e-9", b"\xff\xfe"):
        started = time.monotonic()
        assert r.execute_command("DEBUG", "SLEEP", bad) == "OK", bad
        assert time.monotonic() - started < 1, bad
    assert r.ping() is True


def test_debug_sleep_holds_only_this_client(gated):
    r, other = gated.client(), gated.client()
    started = time.monotonic()
    pipe = r.pipeline(transaction=False)
    pipe.execute_command("DEBUG", "SLEEP", "0x1p-2")          # 0.25 s, as strtod reads it
    pipe.ping()
    assert other.ping() is True
    assert pipe.execute() == ["OK", True]
    assert time.monotonic() - started >= 0.25


def test_no_debug_argument_drops_the_connection(gated):
    """Every DEBUG subcommand, with bad arguments of every kind: each gets a reply and
    the connection stays usable."""
    r = gated.client(socket_timeout=2)
    subcommands = ["SLEEP", "reply-blocking-pause", "reply-blocking-resume", "HELP", "nosuch"]
    bad = [[], ["nan"], ["inf"], ["-1"], ["abc"], [b"\xff\xfe"], [""], ["1", "2", "3"]]
    for sub in subcommands:
        for args in bad:
            try:
                reply = r.execute_command("DEBUG", sub, *args)
            except redis.ResponseError as err:
                reply = err
            assert reply is not None, (sub, args)
            assert r.ping() is True, (sub, args)
    help_lines = r.execute_command("DEBUG", "HELP")
    assert help_lines[0].startswith("DEBUG <subcommand>") and "SLEEP <seconds>" in help_lines
