"""The review room's MQTT stream: latency and rate through amqtt and mosquitto.

What is measured, for each broker -- (A) amqtt 0.12 embedded in this process (what
``Cluster(mqtt=True)`` starts), (M) Debian's mosquitto in its own process on a free
loopback port with a private config -- the two brokers' order rotated run by run:

1. Latency. An ``EventBus`` feeds a ``Bridge`` at a steady 200 events/s for a few seconds
   (``WriteRejected``: a kind that is sent at once, one message each); a ``Viewer`` in this
   process applies them. Per event: the bridge's publish -> the viewer applied it (the
   broker's hop), and the event's creation -> applied (plus the bus's thread and the
   bridge's pump). p50 and p99.
2. Rate. 5,000 such events offered at once: events/s from the first offered until the
   viewer has applied the last (every one through the broker, QoS 1, in order).
3. Coalescing. 100,000 ``CommandExecuted`` (one per write: noisy) offered at once: how
   many messages went on the wire for them, and events/s absorbed.
4. Cost to the cluster. A ``wb.Cluster(mode="raft", nodes=3, election_timeout_ms=2000)``
   (no election mid-run on a loaded machine) in this process with one
   viewer subscribed, ``redis-benchmark -t set -c 10`` at the leader: no stream; no stream
   but a bus subscriber that does nothing (nodes make their events only when someone
   listens: that part of the cost is any listener's, a recording's too); the stream
   through amqtt (the broker in the same process, so the same GIL); through mosquitto.
   Committed writes/s and the ratios.

The bridge and the viewer each run on a loop thread of their own, in this one process, as
in a notebook where the presenter also watches. Every process started is stopped by PID.

    .venv/bin/python benchmarks/mqtt_stream.py --runs 3 --write     # about 2 minutes
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))                 # the workbench package itself
from results import replace_section  # noqa: E402
from run import (bench_parser, check_deadline, command_line, free_port, have_redis_tools,  # noqa: E402
                 percentile, redis_benchmark, rotated, stop_process, wait_for_port)

import workbench as wb  # noqa: E402
from workbench.events import CommandExecuted, EventBus, WriteRejected  # noqa: E402
from workbench.mqtt import Bridge, EmbeddedBroker, Viewer  # noqa: E402

STEADY_RATE = 200          # events/s for the latency run
STEADY_SECONDS = 5.0
BURST = 5_000              # events for the rate run
NOISY = 100_000            # CommandExecuted for the coalescing run
WRITES = 20_000            # redis-benchmark requests per cluster setup


class Mosquitto:
    """Debian's mosquitto on a free 127.0.0.1 port, private config, stopped by its PID."""

    def __init__(self, workdir: str):
        binary = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")
                       if os.path.exists(p)), None)
        if binary is None:
            raise SystemExit("mosquitto is not installed: apt-get install mosquitto")
        self.port = free_port()
        config = os.path.join(workdir, "mosquitto.conf")
        with open(config, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    f"persistence false\nlog_dest file {workdir}/mosquitto.log\n")
        self.proc = subprocess.Popen([binary, "-c", config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        stop_process(self.proc)


def run_name(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def latency(url: str) -> dict:
    bus, name = EventBus(), run_name("lat")
    with Bridge(bus, url, name) as bridge, Viewer(url, name) as viewer:
        viewer.wait_until(lambda v: v.seq is not None, timeout=10, what="the start state")
        count = int(STEADY_RATE * STEADY_SECONDS)
        start = time.monotonic()
        for i in range(count):
            time.sleep(max(0.0, start + i / STEADY_RATE - time.monotonic()))
            bus.publish(WriteRejected("n1", command="SET", error=str(i)))
        viewer.wait_until(lambda v: v.seq >= count, timeout=60, what=f"seq {count}")
        samples = list(viewer.latencies)[-count:]
        hop = [s * 1000 for s, _ in samples]
        whole = [s * 1000 for _, s in samples]
        return {"hop_p50": percentile(hop, 0.5), "hop_p99": percentile(hop, 0.99),
                "event_p50": percentile(whole, 0.5), "event_p99": percentile(whole, 0.99),
                "lost": bridge.link.lost, "late": viewer.stats()["late"]}


def burst(url: str, qos: int = 1) -> dict:
    bus, name = EventBus(max_queue=BURST * 2), run_name("burst")
    with Bridge(bus, url, name, qos=qos) as bridge, Viewer(url, name) as viewer:
        viewer.wait_until(lambda v: v.seq is not None, timeout=10, what="the start state")
        start = time.monotonic()
        for i in range(BURST):
            bus.publish(WriteRejected("n1", command="SET", error=str(i)))
        viewer.wait_until(lambda v: v.seq >= BURST, timeout=120, what=f"seq {BURST}",
                          interval=0.005)
        elapsed = time.monotonic() - start
        stats = viewer.stats()
        return {"events_per_s": BURST / elapsed, "gaps": stats["gaps"],
                "snapshots": stats["snapshots"], "lost": bridge.link.lost}


def coalescing(url: str) -> dict:
    bus, name = EventBus(max_queue=NOISY * 2), run_name("noisy")
    with Bridge(bus, url, name) as bridge, Viewer(url, name) as viewer:
        viewer.wait_until(lambda v: v.seq is not None, timeout=10, what="the start state")
        start = time.monotonic()
        for i in range(NOISY):
            bus.publish(CommandExecuted(f"n{i % 3 + 1}", command="SET", db=0, keys=("k",),
                                        offset=i + 1))
        bus.publish(WriteRejected("n1", command="SET", error="end"))
        viewer.wait_until(lambda v: v.cluster_state().nodes.get("n1") is not None
                          and v.cluster_state().nodes["n1"].rejected == 1,
                          timeout=120, what="the last event", interval=0.01)
        elapsed = time.monotonic() - start
        seq, state = viewer.state()
        commands = sum(node["commands"] for node in state["nodes"].values())
        return {"events_per_s": NOISY / elapsed, "messages": bridge.seq - 1,
                "commands_counted": commands}


def leader_port(cluster) -> int:
    return cluster.primary(timeout=15).port


def cluster_cost(stream: str, mosquitto_url: str) -> float:
    """Committed SET/s from redis-benchmark -c 10 at a raft leader, with ``stream`` ``none``,
    ``listener`` (a bus subscriber that does nothing: the nodes then make their events),
    ``amqtt`` or ``mosquitto``."""
    mqtt = {"amqtt": True, "mosquitto": mosquitto_url}.get(stream)
    # A slower election timeout than the default 500 ms: on a loaded machine a missed
    # heartbeat would start an election mid-run, and redis-benchmark stops at the first
    # READONLY. Every setup runs with the same settings.
    with wb.Cluster(mode="raft", nodes=3, name=run_name("cost"), mqtt=mqtt, record=False,
                    election_timeout_ms=2000, heartbeat_ms=200) as c:
        if stream == "listener":
            c.events.subscribe(lambda event: None)
        viewer = Viewer(c.mqtt.url, c.name) if c.mqtt is not None else None
        try:
            for attempt in range(3):
                try:
                    rps = redis_benchmark(leader_port(c), "set", ["-c", "10"], WRITES)
                    return next(iter(rps.values()))
                except subprocess.CalledProcessError:   # the leader changed: once more
                    if attempt == 2:
                        raise
        finally:
            if viewer is not None:
                viewer.close()


def measure(runs: int, deadline: float, workdir: str) -> dict:
    results: dict = {"A": [], "M": [], "cost": {"none": [], "listener": [], "amqtt": [], "mosquitto": []},
                     "load": []}
    mosquitto = Mosquitto(workdir)
    try:
        steps = runs * (2 * 4 + (4 if have_redis_tools() else 0))
        with tqdm(total=steps, desc="mqtt stream", unit="step") as bar:
            for run in range(runs):
                for key in rotated(["A", "M"], run):
                    check_deadline(deadline)
                    if key == "A":
                        broker = EmbeddedBroker()
                        url = broker.url
                    else:
                        broker, url = None, mosquitto.url
                    try:
                        row = {}
                        for part, fn in (("latency", latency), ("burst", burst),
                                         ("burst0", lambda url: burst(url, qos=0)),
                                         ("coalescing", coalescing)):
                            row[part] = fn(url)
                            results["load"].append(os.getloadavg()[0])
                            bar.update()
                        results[key].append(row)
                    finally:
                        if broker is not None:
                            broker.close()
                if have_redis_tools():
                    for stream in rotated(["none", "listener", "amqtt", "mosquitto"], run):
                        check_deadline(deadline)
                        results["cost"][stream].append(cluster_cost(stream, mosquitto.url))
                        results["load"].append(os.getloadavg()[0])
                        bar.update()
    finally:
        mosquitto.close()
    return results


def median(values) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def report(results: dict, runs: int) -> str:
    def m(key, part, field):
        return median([row[part][field] for row in results[key]])

    lines = [
        f"Medians of {runs} runs, measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, "
        f"`{command_line('mqtt_stream.py', runs, 1.0)}`. (A) amqtt 0.12 embedded in the "
        "benchmark's process (what `Cluster(mqtt=True)` starts); (M) Debian's mosquitto in "
        "its own process. The bridge and one viewer run in the benchmark's process, each on "
        "its own loop thread; QoS 1; every message in order with its seq.",
        "",
        "| | (A) amqtt | (M) mosquitto |",
        "|---|---:|---:|",
        f"| latency, bridge publish -> viewer applied, p50 / p99 ({STEADY_RATE} events/s) | "
        f"{m('A', 'latency', 'hop_p50'):.1f} / {m('A', 'latency', 'hop_p99'):.1f} ms | "
        f"{m('M', 'latency', 'hop_p50'):.1f} / {m('M', 'latency', 'hop_p99'):.1f} ms |",
        f"| latency, event created -> viewer applied, p50 / p99 | "
        f"{m('A', 'latency', 'event_p50'):.1f} / {m('A', 'latency', 'event_p99'):.1f} ms | "
        f"{m('M', 'latency', 'event_p50'):.1f} / {m('M', 'latency', 'event_p99'):.1f} ms |",
        f"| events/s end to end, {BURST:,} offered at once (one message each) | "
        f"{m('A', 'burst', 'events_per_s'):,.0f} | {m('M', 'burst', 'events_per_s'):,.0f} |",
        f"| the same with the bridge publishing at QoS 0 (`Bridge(..., qos=0)`) | "
        f"{m('A', 'burst0', 'events_per_s'):,.0f} | {m('M', 'burst0', 'events_per_s'):,.0f} |",
        f"| per-write events absorbed/s, {NOISY:,} `CommandExecuted` offered at once | "
        f"{m('A', 'coalescing', 'events_per_s'):,.0f} | "
        f"{m('M', 'coalescing', 'events_per_s'):,.0f} |",
        f"| messages on the wire for those {NOISY:,} events (coalesced) | "
        f"{m('A', 'coalescing', 'messages'):,.0f} | {m('M', 'coalescing', 'messages'):,.0f} |",
    ]
    lost = sum(row[p]["lost"] for k in ("A", "M") for row in results[k]
               for p in ("latency", "burst", "burst0"))
    holes = {p: sum(row[p]["gaps"] for k in ("A", "M") for row in results[k])
             for p in ("burst", "burst0")}
    counted = [row["coalescing"]["commands_counted"] for k in ("A", "M") for row in results[k]]
    lines += ["", f"Across every run: {lost} publications lost by the bridge; holes in the "
              f"viewer's sequence: {holes['burst']} at QoS 1, {holes['burst0']} at QoS 0 (at QoS 1 "
              "a hole is a message later than the viewer's 0.5 s reorder window; at QoS 0 a "
              "broker may also drop messages for a subscriber that falls behind), each closed "
              "by a state the viewer asked for; after the coalesced runs the viewer's state "
              "counted "
              f"{min(counted):,}-{max(counted):,} commands of {NOISY:,} (each sample carries "
              "how many events it stands for)."]
    cost = results["cost"]
    if cost["none"]:
        none = median(cost["none"])
        def row(title, key):
            values = cost[key]
            return (f"| {title} | {median(values):,.0f} | {min(values):,.0f}-{max(values):,.0f} "
                    f"| {median(values) / none:.2f}x |")
        lines += ["",
                  "| raft, 3 nodes (election timeout 2 s), `redis-benchmark -t set -c 10` at "
                  "the leader, one viewer subscribed | committed SET/s | runs' range "
                  "| vs no stream |",
                  "|---|---:|---:|---:|",
                  row("no stream", "none"),
                  row("no stream, a bus subscriber that does nothing", "listener"),
                  row("stream through amqtt (same process)", "amqtt"),
                  row("stream through mosquitto", "mosquitto")]
        spans = {k: (min(v), max(v)) for k, v in cost.items()}
        overlap = all(lo <= spans["none"][1] and hi >= spans["none"][0]
                      for lo, hi in spans.values())
        if overlap:
            lines += ["", "Every setup's range of runs overlaps the no-stream range: at this "
                      "machine's load the stream's cost to the cluster is within the noise of "
                      "this measurement."]
    load = results.get("load")
    if load:
        lines += ["", f"Other processes' load while it ran: load average {min(load):.1f}-"
                  f"{max(load):.1f} (1 minute, sampled at each step) on {os.cpu_count()} cores."]
    lines += ["", "Absolute figures move 15-30% between runs on this shared 2-core machine; "
              "read the ratios. Reproduce with "
              f"`{command_line('mqtt_stream.py', runs, 1.0)}`.", ""]
    return "## The review room's MQTT stream\n\n" + "\n".join(lines)


def main(argv=None) -> int:
    parser = bench_parser(__doc__, counts="event counts")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.time_limit
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as workdir:
        results = measure(args.runs, deadline, workdir)
    text = report(results, args.runs)
    print(text)
    if args.write:
        replace_section("mqtt-stream", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
