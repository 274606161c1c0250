"""Fault schedules: what the nemesis does, and when, as plain data.

A schedule is a list of :class:`Fault` steps, each at a time (seconds from the start
of a run) with an action and its targets. Targets are *roles*, resolved when the step
runs -- ``"primary"`` means whichever node is the primary at that moment -- or node
names. Schedules are either written out (the presets below, named after the classic
failures) or generated from a seed: the same seed always gives the same schedule, so a
finding can be replayed exactly.

Every schedule ends the same way: heal the network, heal disks, resume and restart
every node, so that the final reads see the state the cluster settles on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ACTIONS = ("kill", "power-kill", "restart", "isolate", "partition", "heal", "pause", "resume",
           "fail-disk", "heal-disk")


@dataclass(frozen=True)
class Fault:
    at: float                     # seconds from the start of the run
    action: str                   # one of ACTIONS
    targets: tuple = ()           # node names or roles: "primary", "replica", "minority"...
    groups: tuple = ()            # for "partition": tuples of names or roles

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault {self.action!r}; accepted: {', '.join(ACTIONS)}")

    def describe(self) -> str:
        what = " | ".join("[" + ", ".join(g) + "]" for g in self.groups) if self.groups \
            else ", ".join(self.targets)
        return f"{self.at:5.1f}s {self.action} {what}".rstrip()


@dataclass(frozen=True)
class Schedule:
    name: str
    faults: tuple
    seed: int | None = None
    duration: float = 10.0
    notes: str = field(default="", compare=False)

    def describe(self) -> str:
        head = f"schedule {self.name}" + (f" (seed {self.seed})" if self.seed is not None else "")
        return "\n".join([head] + ["  " + f.describe() for f in self.faults])


def split_brain(nodes: int, duration: float = 10.0) -> Schedule:
    """Jepsen 2013: the primary (with one replica on 5 nodes) cut off from the majority."""
    minority = ("primary", "replica") if nodes >= 5 else ("primary",)
    t = duration
    return Schedule("split-brain", (
        Fault(0.2 * t, "partition", groups=(minority, ("rest",))),
        Fault(0.7 * t, "heal"),
    ), duration=duration, notes="the minority primary keeps acknowledging writes")


def power_loss(nodes: int, duration: float = 10.0) -> Schedule:
    """Cut the primary's power with un-fsynced data, then bring it back."""
    t = duration
    return Schedule("power-loss", (
        Fault(0.4 * t, "power-kill", targets=("primary",)),
        Fault(0.6 * t, "restart", targets=("killed",)),
    ), duration=duration)


def wait_then_failover(nodes: int, duration: float = 10.0) -> Schedule:
    """A WAIT-acknowledged write lost to the promotion of a replica that lacked it: the
    primary and the one replica that acknowledges its WAITs are cut off together; the
    majority (which never saw those writes) promotes one of its own. Needs 5 nodes."""
    if nodes < 5:
        raise ValueError("wait-then-failover needs at least 5 nodes: the primary and its "
                         "acknowledging replica must be a minority")
    t = duration
    return Schedule("wait-then-failover", (
        Fault(0.2 * t, "partition", groups=(("primary", "replica"), ("rest",))),
        Fault(0.7 * t, "heal"),
    ), duration=duration, notes="use a workload that confirms each write with WAIT 1")


def flapping_primary(nodes: int, duration: float = 10.0) -> Schedule:
    """The primary is isolated and healed again and again."""
    t = duration
    steps = []
    for i in range(3):
        steps.append(Fault((0.15 + 0.25 * i) * t, "isolate", targets=("primary",)))
        steps.append(Fault((0.27 + 0.25 * i) * t, "heal"))
    return Schedule("flapping-primary", tuple(steps), duration=duration)


PRESETS = {"split-brain": split_brain, "power-loss": power_loss,
           "wait-then-failover": wait_then_failover, "flapping-primary": flapping_primary}


def preset(name: str, nodes: int, duration: float = 10.0) -> Schedule:
    try:
        return PRESETS[name](nodes, duration)
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; presets: {', '.join(PRESETS)}, "
                         "or 'random' with a seed") from None


def generate(seed: int, nodes: int, duration: float = 10.0, *, faults: int = 4,
             actions: tuple = ("kill", "power-kill", "isolate", "partition", "pause",
                               "fail-disk")) -> Schedule:
    """A random schedule from ``seed``: each fault is undone before the next begins."""
    rng = random.Random(seed)
    names = [f"n{i + 1}" for i in range(nodes)]
    slot = duration * 0.8 / faults
    steps = []
    for i in range(faults):
        start = duration * 0.1 + i * slot + rng.uniform(0, slot * 0.2)
        end = start + rng.uniform(slot * 0.3, slot * 0.7)
        action = rng.choice(actions)
        target = rng.choice(["primary", "replica"] + names)
        if action in ("kill", "power-kill"):
            steps += [Fault(start, action, targets=(target,)), Fault(end, "restart", ("killed",))]
        elif action == "isolate":
            steps += [Fault(start, "isolate", targets=(target,)), Fault(end, "heal")]
        elif action == "partition":
            shuffled = names[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, nodes - 1) if nodes > 1 else 1
            steps += [Fault(start, "partition", groups=(tuple(shuffled[:cut]),
                                                         tuple(shuffled[cut:]))),
                      Fault(end, "heal")]
        elif action == "pause":
            steps += [Fault(start, "pause", targets=(target,)), Fault(end, "resume", ("paused",))]
        else:
            steps += [Fault(start, "fail-disk", targets=(target,)),
                      Fault(end, "heal-disk", ("failing",))]
    return Schedule("random", tuple(steps), seed=seed, duration=duration)
