"""Helpers for the protocol tests."""

from __future__ import annotations

from workbench.resp import RequestParser


def feed_bytewise(data: bytes, **kw) -> list:
    """Feed one byte at a time: forces the careful reader at every step."""
    parser = RequestParser(**kw)
    out = []
    for i in range(len(data)):
        out.extend(parser.feed(data[i:i + 1]))
    return out
