"""One MQTT connection on a loop thread of its own, kept up until closed.

The presenter's bridge and each viewer hold one :class:`Link`. It never runs on the
nodes' loop (a slow broker must not slow a node) nor on a kernel's (a cell that blocks
must not stop the stream). A lost connection is retried with backoff; what is published
while it is down is counted as lost, and the stream's sequence numbers let the other side
notice and ask for a state.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Callable

from ..runtime import BackgroundLoop
from .topics import parse_url

log = logging.getLogger("workbench.mqtt")

MAX_INFLIGHT = 500          # publications handed to the client and not yet confirmed


class Link:
    """An aiomqtt client that subscribes to ``subscriptions`` on every (re)connect and
    hands each message to ``on_message(topic, payload)`` on its loop thread."""

    def __init__(self, url: str, *, identifier: str, subscriptions: list[str],
                 on_message: Callable[[str, bytes], None],
                 on_connect: Callable[[bool], None] | None = None,
                 thread_name: str = "workbench-mqtt", connect_timeout: float = 10.0):
        self.url = url
        self.host, self.port = parse_url(url)
        self.identifier = identifier
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.on_connect = on_connect
        self.connect_timeout = connect_timeout
        self.connects = 0            # successful connections so far
        self.lost = 0                # publications that never reached the broker
        self.last_error: str | None = None
        self._client = None
        self._inflight: set[asyncio.Future] = set()
        self._closing = False
        self._main: asyncio.Task | None = None
        self.runtime = BackgroundLoop(name=thread_name)

    # -- from any thread -------------------------------------------------------------------
    def start(self) -> None:
        """Connect and subscribe; ``ConnectionError`` naming the URL if the broker cannot
        be reached within ``connect_timeout`` seconds."""
        try:
            self.runtime.run(self._start(), timeout=self.connect_timeout + 5)
        except BaseException as err:
            self.close()
            if isinstance(err, (ConnectionError, TimeoutError)):
                raise ConnectionError(f"cannot reach the MQTT broker at {self.url}: "
                                      f"{err}") from None
            raise

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for what was published to leave, disconnect,
        and stop the loop thread."""
        if self._closing:
            return
        self._closing = True
        try:
            self.runtime.run(self._stop(timeout), timeout=timeout + 10)
        except Exception:
            pass
        self.runtime.stop()

    # -- on the loop thread ------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Hand one message to the client (in order, not waiting for the broker); False
        and counted as lost while disconnected."""
        client = self._client
        if client is None:
            self.lost += 1
            return False
        # ensure_future runs the first step of each publish in creation order, and that
        # step hands the message to paho: messages leave in the order published here.
        task = asyncio.ensure_future(client.publish(topic, payload, qos=qos, retain=retain))
        self._inflight.add(task)
        task.add_done_callback(self._published)
        return True

    async def room(self) -> None:
        """Wait while too many publications are in flight (back-pressure)."""
        while len(self._inflight) >= MAX_INFLIGHT:
            await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every publication in flight."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)

    def _published(self, task: asyncio.Future) -> None:
        self._inflight.discard(task)
        if task.cancelled() or task.exception() is not None:
            self.lost += 1

    async def _start(self) -> None:
        ready = asyncio.get_running_loop().create_future()
        self._main = asyncio.ensure_future(self._run(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer within {self.connect_timeout} s") from None

    async def _run(self, ready: asyncio.Future) -> None:
        import aiomqtt
        delay = 0.2
        while not self._closing:
            was = self.connects
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.identifier,
                                          keepalive=15, timeout=self.connect_timeout) as client:
                    client.pending_calls_threshold = MAX_INFLIGHT + 50
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self.connects += 1
                    delay = 0.2
                    if not ready.done():
                        ready.set_result(None)
                    if self.on_connect is not None:
                        self._call(self.on_connect, self.connects == 1)
                    async for message in client.messages:
                        self._call(self.on_message, str(message.topic), bytes(message.payload))
            except aiomqtt.MqttError as err:
                self.last_error = str(err) or type(err).__name__
                if not ready.done():
                    ready.set_exception(ConnectionError(self.last_error))
                    return
                if self.connects > was:       # said once per lost connection, not per retry
                    log.warning("MQTT connection to %s lost (%s); reconnecting", self.url,
                                self.last_error)
            finally:
                self._client = None
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @staticmethod
    def _call(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:   # one bad message or hook must not end the connection
            traceback.print_exc()

    async def _stop(self, timeout: float) -> None:
        await self.drain(timeout)
        if self._main is not None and not self._main.done():
            self._main.cancel()
            await asyncio.wait([self._main], timeout=timeout)
