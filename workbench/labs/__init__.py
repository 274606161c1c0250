"""Labs: exercises that end with a verdict from a checker on a real run.

A lab notebook (``labs/NN-name.ipynb``) states a claim, gives a cluster and the levers,
asks the learner to act in its ``answer`` cells, and ends with a ``check`` cell that
calls one of the check functions below. Each check RUNS the learner's choice against
real nodes (or reads the run the lab made), records a history, applies the checkers and
returns a :class:`LabResult`: *passed* or *not yet*, with the reason and the evidence.

    from workbench import labs
    verdict = labs.check_wait_is_not_a_promise(my_schedule)
    labs.show(verdict)        # the run behind it, as a picture
    verdict                   # "passed — ..." / "not yet — ..."

``workbench lab list`` and ``workbench lab check labs/NN-....ipynb [--solution FILE]``
run the same checks headless (:mod:`workbench.labs.runner`).
"""

from . import power_cut
from .break_raft import check_break_raft
from .power_cut import check_power_cut
from .quorum import check_minority_leader, check_quorum_prediction
from .read_your_writes import Session, check_read_your_writes
from .result import LabResult
from .wait import check_wait_is_not_a_promise
from .who_may_lead import Stage, check_who_may_lead, leave_one_behind


def picture(result: LabResult):
    """The runs behind a verdict as one Bokeh layout (the shootout report's columns:
    operations over time, fault windows shaded, what the checkers flagged); None when
    the verdict came without a run."""
    if not result.runs:
        return None
    from bokeh.layouts import column

    from ..history import report
    runs = list(result.runs)
    layout = report.layout(runs)
    if report.notes(runs):
        # the notes speak of a shootout's command line and of one config for every run;
        # a lab's runs differ on purpose and say so in their own columns
        layout = layout.children[-1]
    runs = layout
    if result.check == power_cut.CHECK:
        return column(power_cut.cost_figure(result), runs)
    return runs


def show(result: LabResult) -> None:
    """Display :func:`picture` in a notebook, if there is one."""
    figure = picture(result)
    if figure is not None:
        from ..viz import show_figure
        show_figure(figure)


__all__ = ["LabResult", "Session", "Stage", "check_break_raft", "check_minority_leader",
           "check_power_cut", "check_quorum_prediction", "check_read_your_writes",
           "check_wait_is_not_a_promise", "check_who_may_lead", "leave_one_behind",
           "picture", "show"]
