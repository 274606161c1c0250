"""Pub/sub channels, patterns and keyspace notifications.

``notify-keyspace-events`` chooses what is published when keys change: ``K`` sends
``__keyspace@<db>__:<key>`` with the event name, ``E`` sends ``__keyevent@<db>__:<event>``
with the key, and the class letters (``g$lshxe``, ``A`` for all) pick which events.
In the durable modes these notifications must wait until the write is durable; the
commit gate will defer the call to :meth:`PubSub.keyspace_events`.
"""

from __future__ import annotations

from ..resp import Push
from ..store.glob import glob_match


def parse_notify_flags(text: str) -> set:
    flags = set(text)
    if "A" in flags:
        flags |= set("g$lshzxetmdn") - set("mn")
    return flags


class PubSub:
    def __init__(self, server):
        self.server = server
        self.channels: dict[bytes, set] = {}
        self.patterns: dict[bytes, set] = {}
        self.notify_flags: set = set()
        self.configure(server.config["notify-keyspace-events"])

    def configure(self, text: str) -> None:
        flags = parse_notify_flags(text)
        self.notify_flags = flags if ("K" in flags or "E" in flags) else set()

    # -- subscriptions -------------------------------------------------------------
    def _count(self, conn) -> int:
        return len(conn.channels) + len(conn.patterns)

    def subscribe(self, conn, channels, pattern: bool) -> list:
        table = self.patterns if pattern else self.channels
        mine = conn.patterns if pattern else conn.channels
        kind = b"psubscribe" if pattern else b"subscribe"
        replies = []
        for ch in channels:
            if ch not in mine:
                mine.add(ch)
                table.setdefault(ch, set()).add(conn)
            replies.append(Push([kind, ch, self._count(conn)]))
        return replies

    def unsubscribe(self, conn, channels, pattern: bool) -> list:
        table = self.patterns if pattern else self.channels
        mine = conn.patterns if pattern else conn.channels
        kind = b"punsubscribe" if pattern else b"unsubscribe"
        targets = list(channels) if channels else sorted(mine)
        replies = []
        for ch in targets:
            if ch in mine:
                mine.discard(ch)
                subs = table.get(ch)
                if subs is not None:
                    subs.discard(conn)
                    if not subs:
                        del table[ch]
            replies.append(Push([kind, ch, self._count(conn)]))
        if not targets:
            replies.append(Push([kind, None, self._count(conn)]))
        return replies

    def unsubscribe_all(self, conn) -> None:
        if conn.channels or conn.patterns:
            self.unsubscribe(conn, (), False)
            self.unsubscribe(conn, (), True)

    # -- publishing -----------------------------------------------------------------
    def publish(self, channel: bytes, message: bytes) -> int:
        receivers = 0
        for conn in self.channels.get(channel, ()):
            conn.send(Push([b"message", channel, message]))
            receivers += 1
        for pattern, conns in self.patterns.items():
            if glob_match(pattern, channel):
                for conn in conns:
                    conn.send(Push([b"pmessage", pattern, channel, message]))
                    receivers += 1
        return receivers

    def keyspace_events(self, events) -> None:
        """Publish notifications for ``(class, event, db, key)`` tuples, as configured."""
        flags = self.notify_flags
        for cls, event, db, key in events:
            if cls not in flags:
                continue
            name = event.encode()
            if "K" in flags:
                self.publish(b"__keyspace@%d__:%s" % (db, key), name)
            if "E" in flags:
                self.publish(b"__keyevent@%d__:%s" % (db, name), key)

    def close(self) -> None:
        self.channels.clear()
        self.patterns.clear()
