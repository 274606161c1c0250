"""The nemesis: carries out a fault schedule against a running cluster.

:meth:`Nemesis.step` is called with the time since the run began and applies every
fault that is due, resolving roles at that moment ("primary" is whoever is primary
now). It remembers what it broke, so ``"killed"``, ``"paused"`` and ``"failing"`` name
those nodes later, and it records every fault with its time for the report. Finally
:meth:`Nemesis.finish` undoes everything: heal the network and the disks, resume and
restart every node, and wait for a primary.
"""

from __future__ import annotations

import time

from .schedule import Fault, Schedule


# Faults that flip one node's state and their undo: action -> (Node method, list of
# broken nodes it adds to, list it removes from).
_TOGGLES = {
    "pause": ("pause", "paused", None), "resume": ("resume", None, "paused"),
    "fail-disk": ("fail_disk", "failing", None), "heal-disk": ("heal_disk", None, "failing"),
}


class Nemesis:
    def __init__(self, cluster, schedule: Schedule):
        self.cluster = cluster
        self.schedule = schedule
        self._due = list(schedule.faults)
        self.killed: list[str] = []
        self.paused: list[str] = []
        self.failing: list[str] = []
        self.log: list[tuple[float, str]] = []       # (seconds since start, what happened)
        self.started = time.monotonic()

    def _resolve(self, target: str) -> list[str]:
        nodes = self.cluster.nodes
        if target == "primary":
            primary = self.cluster.current_primary()
            return [primary.name] if primary is not None else []
        if target == "replica":
            replicas = [n.name for n in nodes if n.role == "replica"]
            return replicas[:1]
        if target == "killed":
            return list(self.killed)
        if target == "paused":
            return list(self.paused)
        if target == "failing":
            return list(self.failing)
        return [target] if any(n.name == target for n in nodes) else []

    def step(self, elapsed: float) -> None:
        while self._due and self._due[0].at <= elapsed:
            self._apply(self._due.pop(0), elapsed)

    def _apply(self, fault: Fault, elapsed: float) -> None:
        c = self.cluster
        names = [n for t in fault.targets for n in self._resolve(t)]
        action = fault.action
        if action in ("kill", "power-kill"):
            for name in names:
                c.node(name).kill(power_loss=action == "power-kill")
                self.killed.append(name)
        elif action == "restart":
            for name in names:
                if not c.node(name).alive:
                    c.node(name).restart()
                if name in self.killed:
                    self.killed.remove(name)
        elif action == "isolate":
            if names:
                c.partition(names)
        elif action == "partition":
            groups, named = [], set()
            for group in fault.groups:
                if group == ("rest",):
                    continue
                members = [n for t in group for n in self._resolve(t)]
                groups.append(members)
                named.update(members)
            if groups and all(groups):
                c.partition(*groups)
                # the log names the sides: "partition n1 | n2 n3"
                rest = [n.name for n in c.nodes if n.name not in named]
                names = [" | ".join(" ".join(g) for g in groups + ([rest] if rest else []))]
        elif action == "heal":
            c.heal()
        elif action in _TOGGLES:
            method, remember, forget = _TOGGLES[action]
            for name in names:
                getattr(c.node(name), method)()
                if remember:
                    getattr(self, remember).append(name)
                elif name in getattr(self, forget):
                    getattr(self, forget).remove(name)
        self.log.append((elapsed, f"{action} {' '.join(names)}".strip()))

    def finish(self, timeout: float = 15.0) -> None:
        """Undo every fault and wait until the cluster has a primary again."""
        c = self.cluster
        c.heal()
        for name in list(self.failing):
            c.node(name).heal_disk()
        for name in list(self.paused):
            c.node(name).resume()
        for node in c.nodes:
            if not node.alive:
                node.restart()
        self.killed, self.paused, self.failing = [], [], []
        self.log.append((time.monotonic() - self.started, "heal all, restart all"))
        c.primary(timeout=timeout)
