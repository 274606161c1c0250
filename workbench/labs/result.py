"""What a lab's check returns: passed or not yet, the reason, and the evidence.

A :class:`LabResult` shows itself in a notebook as one line, green "passed — ..." or
amber "not yet — ...", and carries the same verdict as plain data under
:data:`MIME_TYPE`, which is what ``workbench lab check`` reads back from a notebook run
headless. The evidence is JSON-ready (counts, node names, a checker's message); the
runs behind it (histories, fault logs) ride along in ``runs`` for pictures, and are
never serialized.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

MIME_TYPE = "application/vnd.workbench.lab-result+json"
PASSED, NOT_YET = "passed", "not yet"


@dataclass(frozen=True)
class LabResult:
    check: str                      # which check, e.g. "wait-is-not-a-promise"
    passed: bool
    reason: str
    evidence: dict = field(default_factory=dict)
    runs: tuple = field(default=(), compare=False, repr=False)   # shootout-style result dicts

    @property
    def word(self) -> str:
        return PASSED if self.passed else NOT_YET

    def __str__(self) -> str:
        return f"{self.word} — {self.reason}"

    def to_dict(self) -> dict:
        """The verdict as plain data (what a grader stores)."""
        return {"check": self.check, "passed": self.passed, "verdict": self.word,
                "reason": self.reason, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: dict) -> "LabResult":
        return cls(data["check"], bool(data["passed"]), data["reason"],
                   dict(data.get("evidence") or {}))

    def _repr_html_(self) -> str:
        colour, background = ("#1b5e20", "#e8f5e9") if self.passed else ("#8a4b00", "#fff4e0")
        return (f'<div class="wb-lab-result wb-lab-{"passed" if self.passed else "not-yet"}" '
                f'style="padding:6px 10px;border-left:5px solid {colour};'
                f'background:{background};color:{colour};font-size:1.05em">'
                f'<b>{self.word}</b> — {html.escape(self.reason)}</div>')

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": str(self), "text/html": self._repr_html_(),
                MIME_TYPE: json.loads(json.dumps(self.to_dict(), default=str))}


def not_yet(check: str, reason: str, **evidence) -> LabResult:
    return LabResult(check, False, reason, evidence)


def passed(check: str, reason: str, **evidence) -> LabResult:
    return LabResult(check, True, reason, evidence)
