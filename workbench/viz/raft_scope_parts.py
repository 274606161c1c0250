"""The parts both Raft scopes are built from: the animation clock, the per-server levers,
the log of what happened.

:class:`Animator` runs a scope's frames on the kernel's own asyncio loop, so widgets and
Bokeh documents are only touched from the kernel's thread (see
:mod:`workbench.viz.pump`), and it stops for good when told. :class:`ServerPicker` is
the row of levers that act on one server, chosen from a menu or by a click in the ring.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import time
import traceback
from typing import Callable

import ipywidgets as widgets

from .charts import label
from .pump import kernel_loop

FRAME_S = 0.1                  # ten frames a second
MAX_FRAME_S = 0.25             # a late frame (a busy kernel) advances at most this much
NOTES = 50                     # lines kept in a scope's log (it scrolls)


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Animator:
    """Calls ``frame(wall_seconds)`` about every ``interval`` seconds on the kernel's loop
    (or, outside a kernel, on the asyncio loop running where it was made) until
    :meth:`stop`. With neither, it does nothing: the caller runs frames itself.

    Each frame is scheduled with an empty context, so that its widget updates belong to
    the cell running at that moment (the pattern of :class:`~workbench.viz.pump.UiPump`).
    """

    def __init__(self, frame: Callable[[float], None], interval: float = FRAME_S):
        self.frame = frame
        self.interval = interval
        self.frames = 0
        self._loop = kernel_loop() or _running_loop()
        self._handle = None
        self._last = 0.0
        self.stopped = False

    @property
    def running(self) -> bool:
        return self._handle is not None and not self.stopped

    def start(self) -> bool:
        if self._loop is None or self.stopped or self._handle is not None:
            return self.running
        self._last = time.monotonic()
        self._schedule()
        return True

    def _schedule(self) -> None:
        self._handle = self._loop.call_later(self.interval, self._tick,
                                             context=contextvars.Context())

    def _tick(self) -> None:
        if self.stopped:
            return
        now = time.monotonic()
        elapsed, self._last = min(now - self._last, MAX_FRAME_S), now
        try:
            self.frame(elapsed)
            self.frames += 1
        except Exception:   # a broken frame must not leave a loop spinning on errors
            traceback.print_exc()
            self.stop()
            return
        self._schedule()

    def stop(self) -> None:
        self.stopped = True
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


def button(text: str, css: str, tooltip: str, handler, *, width: str = "auto"):
    button = widgets.Button(description=text, tooltip=tooltip,
                            layout=widgets.Layout(width=width, height="26px", flex="0 0 auto"))
    button.add_class(css)
    button.on_click(lambda _: handler())
    return button


class ServerPicker(widgets.HBox):
    """The per-server levers: which server (from the menu, or a click on it in the ring),
    a button per action, and a line on what the chosen server is doing.

    ``actions`` are ``(key, text, tooltip, do)``; a press calls ``do(server)``.
    """

    def __init__(self, actions, css: str):
        self.menu = widgets.Dropdown(description="server", options=[],
                                     layout=widgets.Layout(width="10em"),
                                     style={"description_width": "4em"})
        self.menu.add_class(f"{css}-server")
        self.buttons = {key: button(text, f"{css}-{key.replace('_', '-')}", tooltip,
                                    lambda do=do: do(self.menu.value))
                        for key, text, tooltip, do in actions}
        self.summary = label("", f"{css}-selected")
        super().__init__([self.menu, *self.buttons.values(), self.summary],
                         layout=widgets.Layout(align_items="center", grid_gap="4px",
                                               flex_flow="row wrap"))

    @property
    def value(self) -> str | None:
        return self.menu.value

    @value.setter
    def value(self, server: str) -> None:
        self.menu.value = server

    def follow(self, servers: list[str]) -> None:
        """Offer ``servers``, keeping the choice if it is still there."""
        if list(self.menu.options) != servers:
            chosen = self.menu.value
            self.menu.options = servers
            self.menu.value = chosen if chosen in servers else (servers[0] if servers else None)


def render_notes(lines, title: str) -> str:
    items = "".join(f"<div>{html.escape(line)}</div>" for line in reversed(lines))
    return (f"<div style='font-size:12px'><b>{html.escape(title)}</b>"
            f"<div style='font-family:monospace;max-height:11em;overflow:auto'>"
            f"{items or '(nothing yet)'}</div></div>")


__all__ = ["Animator", "FRAME_S", "MAX_FRAME_S", "NOTES", "ServerPicker", "button",
           "render_notes"]
