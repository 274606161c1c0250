"""The background event loop every node of a cluster runs on.

A notebook cell (or a test) is synchronous: it calls ``redis.Redis(...).set(...)`` and
blocks until the reply. If the nodes ran on the kernel's own event loop, that call would
wait for a server that can never run -- a deadlock. So the nodes live on a loop of their
own, on a daemon thread, and synchronous code hands work to it with :meth:`run`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (faster sockets), else the standard loop."""
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:   # pragma: no cover - uvloop is a dependency, but optional
        return asyncio.new_event_loop()


class BackgroundLoop:
    def __init__(self, name: str = "workbench-loop"):
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Awaitable, timeout: float | None = 30) -> Any:
        """Run a coroutine on the loop and wait for its result from this thread."""
        if self.in_loop_thread:
            raise RuntimeError("BackgroundLoop.run() called from the loop thread itself")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"operation did not finish within {timeout} s") from None

    def call(self, fn: Callable, *args, timeout: float | None = 30) -> Any:
        """Run a plain function on the loop thread (to read state consistently)."""
        async def wrapper():
            return fn(*args)
        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        if not self.loop.is_running():
            return

        async def cancel_all():
            # Cancel until everything is gone: asyncio.wait_for in Python 3.11 can swallow
            # one cancellation when its inner future finishes at the same moment.
            for _ in range(50):
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    return
                for t in tasks:
                    t.cancel()
                await asyncio.wait(tasks, timeout=0.1)

        try:
            self.run(cancel_all(), timeout=10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()
