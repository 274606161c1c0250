"""Bokeh in a notebook page, with no set-up cell: every chart brings BokehJS along.

JupyterLab draws a Bokeh widget (``jupyter_bokeh.BokehModel``) with the BokehJS library
of the *page*, which only an ``output_notebook()`` output puts there. A page reloaded
while the kernel runs has none, so a chart shown again fails ("Failed to create view
for 'BokehView'"). So each chart is displayed after a load of BokehJS from the
installed package (no network needed), skipped in the page when the same version is
already there.

:class:`ChartWidget` also stops an echo: ``jupyter_bokeh``'s page side sends back every
stream and patch it applied from the kernel, and the kernel would apply them a second
time. A live chart's data source then grows a copy of each stream, and a patch aimed at
row *n* of the kernel's copy lands past the end of the page's.
"""

from __future__ import annotations

import functools
import json

from bokeh import __version__ as BOKEH_VERSION
from bokeh.core.serialization import UnknownReferenceError
from jupyter_bokeh import BokehModel

LOAD_MIME_TYPE = "application/vnd.bokehjs_load.v0+json"   # run by jupyter_bokeh's renderer
ECHOED_EVENTS = frozenset({"ColumnsStreamed", "ColumnsPatched"})


@functools.cache
def load_script() -> str:
    """BokehJS (inline, from the installed package), run only if the page lacks it."""
    from bokeh.core.templates import AUTOLOAD_NB_JS
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    script = AUTOLOAD_NB_JS.render(bundle=bundle_for_objs_and_resources(None, INLINE),
                                   elementid=None, force=True, timeout=5000,
                                   register_mime=False)
    return (f"if (window.Bokeh === undefined || window.Bokeh.version !== "
            f"{json.dumps(BOKEH_VERSION)}) {{\n{script}\n}}")


def display_bokehjs() -> None:
    """Display the BokehJS load: the widgets displayed after it in the cell can draw."""
    from IPython.display import display

    # Both forms, as Bokeh's own output_notebook sends: JupyterLab runs the first through
    # jupyter_bokeh's renderer, Voila (which ignores that type) runs the script.
    script = load_script()
    display({LOAD_MIME_TYPE: script, "application/javascript": script}, raw=True)


def display_with_bokehjs(widget) -> None:
    """Display ``widget`` (which holds Bokeh charts) after the BokehJS load."""
    from IPython.display import display

    display_bokehjs()
    display(widget._repr_mimebundle_(), raw=True)


class ChartWidget(BokehModel):
    """A Bokeh figure as a widget the kernel can stream into; displays with BokehJS."""

    def _sync_model(self, model, content, buffers) -> None:
        # The page never streams or patches data of its own: these are echoes.
        if content.get("kind") in ECHOED_EVENTS:
            return
        try:
            super()._sync_model(model, content, buffers)
        except UnknownReferenceError:
            # an echo naming a model the page made for itself (a tool's overlay, a view
            # of a renderer); the kernel's document has no such model and needs none
            pass

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)


def show_figure(fig) -> None:
    """Display a Bokeh figure or layout in a notebook; no ``output_notebook()`` needed."""
    display_with_bokehjs(ChartWidget(fig))
