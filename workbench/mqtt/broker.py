"""An MQTT broker inside this process: amqtt on 127.0.0.1, on a loop thread of its own.

For a design review with nothing to install: ``Cluster(mqtt=True)`` starts one for its
stream, ``workbench broker`` runs one in a terminal. It shares the GIL with whatever else
runs here, so a real broker (mosquitto) carries more messages per second; for a handful of
viewers of one cluster it is plenty (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import logging

from ..runtime import BackgroundLoop

HOST = "127.0.0.1"


def _config(port: int) -> dict:
    return {"listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}}}


class EmbeddedBroker:
    """``EmbeddedBroker(port=0)``: listens on ``127.0.0.1`` (``0``: a free port) until
    :meth:`close`; ``url`` is what clients connect to."""

    def __init__(self, port: int = 0):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be from 0 (any free one) to 65535, not {port!r}")
        # amqtt reports every connection at INFO and a client that vanishes at ERROR; a
        # viewer's kernel going away is normal here.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        self._runtime = BackgroundLoop(name="workbench-mqtt-broker")
        self._broker = None
        try:
            self.port = self._runtime.run(self._start(port), timeout=15)
        except BaseException as err:
            self._runtime.stop()
            from amqtt.errors import BrokerError
            if isinstance(err, BrokerError):     # amqtt wraps the OSError of a taken port
                raise OSError(f"cannot listen on {HOST}:{port} for MQTT: "
                              f"{err.__cause__ or err}") from None
            raise

    async def _start(self, port: int) -> int:
        from amqtt.broker import Broker   # constructed on its own loop: it asks for the running one
        self._broker = Broker(_config(port))
        await self._broker.start()
        server = self._broker._servers["default"].instance   # the real port when asked for 0
        return server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def closed(self) -> bool:
        return self._broker is None

    def close(self) -> None:
        """Disconnect every client and stop listening."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            self._runtime.run(broker.shutdown(), timeout=10)
        except Exception:   # a client mid-handshake can make shutdown complain; stop anyway
            pass
        self._runtime.stop()

    def __enter__(self) -> "EmbeddedBroker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmbeddedBroker {self.url}{' closed' if self.closed else ''}>"
