"""Helpers for driving the pure keyspace in unit tests: argv from plain values."""

from __future__ import annotations

from workbench.resp import ReplyError


def argv(*args) -> list[bytes]:
    return [a if isinstance(a, bytes) else str(a).encode() for a in args]


def run(ks, *args, now=1_000, db=0, replica=False):
    """Execute one command on keyspace ``ks`` at time ``now`` (ms); the Outcome."""
    return ks.execute(argv(*args), db=db, now_ms=now, replica=replica)


def reply(ks, *args, now=1_000, db=0):
    return run(ks, *args, now=now, db=db).reply


def error(ks, *args, now=1_000):
    r = reply(ks, *args, now=now)
    assert isinstance(r, ReplyError), r
    return r.text


def outcome(ks, *args, now=1_000, db=0):
    """The reply, or ``("error", text)`` for an error reply: comparable with ``==``."""
    r = reply(ks, *args, now=now, db=db)
    return ("error", r.text) if isinstance(r, ReplyError) else r
