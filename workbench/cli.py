"""``workbench`` on the command line.

    workbench lab                       JupyterLab on the tutorial notebooks
    workbench lab list                  the labs (exercises), their titles and claims
    workbench lab check labs/01-....ipynb [--solution FILE]
                                        run a lab headless; exit 0 passed, 1 not yet, 2 error
    workbench cluster --mode async      a cluster in this terminal, for redis-cli
    workbench check-aof [--fix] FILE    check (and cut back) an append-only file
    workbench broker [--port N]         an MQTT broker on 127.0.0.1 for design reviews
    workbench shootout --modes async,aof --schedule split-brain --seed 7 --duration 20
                                        every mode under the same faults, side by side
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _int_at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (argparse exits 2 otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


# Settings the cluster gives each node itself: a --config for them would make the nodes
# collide (one port for all) or leave the cluster's own layout.
MANAGED_CONFIGS = ("port", "bind", "dir", "shard_nodes", "raft_port")


def _configs(items) -> dict:
    """``--config NAME=VALUE`` items -> Cluster keywords; ValueError says what is wrong."""
    configs = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--config takes NAME=VALUE, not {item!r}")
        keyword = name.strip().replace("-", "_")
        if keyword in MANAGED_CONFIGS:
            raise ValueError(f"--config {name}: the cluster sets {name} for each node itself")
        configs[keyword] = value
    return configs


def _output_path(path: str | None, flag: str) -> None:
    """Refuse, before anything runs, an output file that could not be written later."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path}: is a directory")
    if not os.path.isdir(folder):
        raise ValueError(f"{flag} {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path}: not writable")


def _data_dir_line(data_dir: str | None, existed: bool) -> str:
    """Where the cluster keeps its files, and what happens to them when it stops."""
    if data_dir is None:
        return ("in a fresh temporary directory, deleted when the cluster stops "
                "(--data-dir DIR keeps the files)")
    if existed:
        return "in the existing directory given by --data-dir: the nodes start from what it holds; kept"
    return "in a new directory made for --data-dir; kept when the cluster stops"


def _cluster(args) -> int:
    from .cluster import Cluster
    from .storage import AofError
    from .storage.raft_records import RaftLogCorrupt
    try:
        configs = _configs(args.config)
        if args.data_dir is not None and os.path.exists(args.data_dir) \
                and not os.path.isdir(args.data_dir):
            raise ValueError(f"--data-dir {args.data_dir}: not a directory")
    except ValueError as err:
        print(f"workbench cluster: {err}", file=sys.stderr)
        return 2
    existed = args.data_dir is not None and os.path.isdir(args.data_dir)
    try:
        cluster = Cluster(mode=args.mode, nodes=args.nodes, data_dir=args.data_dir,
                          down_after_ms=args.down_after_ms, **configs)
    except ValueError as err:
        print(f"workbench cluster: {err}", file=sys.stderr)
        return 2
    except (AofError, RaftLogCorrupt) as err:    # a damaged log: refuse to start, say where
        print(f"workbench cluster: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        settings = "".join(f", {k}={v}" for k, v in configs.items())
        print(f"{args.mode} cluster of {len(cluster.nodes)} node(s){settings}")
        print(f"data in {cluster.data_dir}: {_data_dir_line(args.data_dir, existed)}")
        for node in cluster.nodes:
            print(f"  {node.name}  127.0.0.1:{node.port}  {node.role}"
                  f"    redis-cli -p {node.port}")
        print("Ctrl-C stops the cluster.", flush=True)
        if args.ready_file:                  # written whole, then renamed: never read half
            with open(args.ready_file + ".tmp", "w") as f:
                f.write(" ".join(str(n.port) for n in cluster.nodes) + "\n")
            os.replace(args.ready_file + ".tmp", args.ready_file)
        while not stop.wait(args.duration or 3600):
            if args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0


def _check_aof(args) -> int:
    from .storage import check_aof
    return check_aof.check(args.file, fix=args.fix, databases=args.databases)


def _shootout(args) -> int:
    from .history import report, shootout
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        configs = _configs(args.config)
        shootout.validate(modes, args.schedule, args.workload, nodes=args.nodes,
                          duration=args.duration, clients=args.clients, seed=args.seed,
                          configs=configs)
        _output_path(args.json, "--json")
        _output_path(args.html, "--html")
    except ValueError as err:
        print(f"workbench shootout: {err}", file=sys.stderr)
        return 2
    results = shootout.run(modes, args.schedule, seed=args.seed, duration=args.duration,
                           workload=args.workload, nodes=args.nodes, clients=args.clients,
                           progress=not args.quiet, configs=configs,
                           node_readers=args.node_readers, keys=args.keys)
    print(report.table(results))
    if args.json:
        recordings = report.write_json(results, args.json)
        print(f"JSON written to {args.json}"
              + (f", recordings beside it: {', '.join(recordings)}" if recordings else ""))
    if args.html:
        report.html(results, args.html)
        print(f"HTML report written to {args.html}")
    failed = [r["mode"] for r in results if "error" in r]
    if failed:
        print(f"workbench shootout: {', '.join(failed)} did not finish (see the notes)",
              file=sys.stderr)
    return 1 if failed else 0


def _raft_campaign(args) -> int:
    from .raft import campaign
    argv = ["--seeds", str(args.seeds), "--steps", str(args.steps),
            "--first-seed", str(args.first_seed)] + (["--no-progress"] if args.quiet else [])
    return campaign.main(argv)


def _broker(args) -> int:
    from .mqtt.broker import EmbeddedBroker
    try:
        broker = EmbeddedBroker(args.port)
    except (OSError, ValueError) as err:
        print(f"workbench broker: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"MQTT broker on {broker.url}")
        print(f"  presenter: wb.Cluster(..., name='review', mqtt='{broker.url}')")
        print(f"  reviewers: Viewer('{broker.url}', 'review')")
        print("Ctrl-C stops the broker.", flush=True)
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        broker.close()
    return 0


def _lab_list(args) -> int:
    from .labs import runner
    try:
        labs = runner.list_labs(args.dir)
    except runner.LabError as err:
        print(f"workbench lab list: {err}", file=sys.stderr)
        return 2
    if not labs:
        print(f"workbench lab list: no labs (NN-name.ipynb) in {args.dir}", file=sys.stderr)
        return 2
    for lab in labs:
        print(f"{os.path.relpath(lab.path)}\n    {lab.title}\n    claim: {lab.claim}")
    return 0


def _lab_check(args) -> int:
    import json
    from .labs import runner
    try:
        _output_path(args.json, "--json")
        run = runner.check(args.notebook, args.solution, timeout=args.timeout)
    except (runner.LabError, ValueError) as err:
        print(f"workbench lab check: {err}", file=sys.stderr)
        return 2
    print(f"{args.notebook}: {run.lab.title}")
    for result in run.results:
        print(f"  {result.check}: {result}")
    for error in run.errors:
        print(f"  error: {error}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(run.to_dict(), f, indent=2)
    print({0: "all checks passed", 1: "not yet", 2: "the lab did not run through"}[run.exit_code])
    return run.exit_code


def _lab(args) -> int:
    if getattr(args, "lab_run", None) is not None:
        return args.lab_run(args)
    notebooks = os.path.join(REPO_ROOT, "notebooks")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--ip=127.0.0.1",
           f"--ServerApp.root_dir={REPO_ROOT}", "--LabApp.default_url=/lab/tree/notebooks/00-tour.ipynb"]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    if args.port:
        cmd.append(f"--port={args.port}")
    print("Opening JupyterLab on", notebooks, flush=True)
    return subprocess.call(cmd)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("cluster", help="run a cluster in this terminal")
    p.add_argument("--mode", default="async", help="async, aof, sync or raft")
    p.add_argument("--nodes", type=_positive_int, default=None,
                   help="how many nodes (default: the mode's size, 1 for aof, 3 otherwise)")
    p.add_argument("--data-dir", default=None,
                   help="keep the nodes' files here (default: a temporary directory, "
                        "deleted when the cluster stops)")
    p.add_argument("--down-after-ms", type=int, default=1000)
    p.add_argument("--config", action="append", metavar="NAME=VALUE",
                   help="a node config, e.g. --config appendfsync=always (repeatable)")
    p.add_argument("--duration", type=_seconds, default=None,
                   help="stop by itself after this many seconds")
    p.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    p.set_defaults(run=_cluster)

    p = sub.add_parser("check-aof", help="check an append-only file, like valkey-check-aof")
    p.add_argument("--fix", action="store_true", help="cut the file back to its valid part")
    p.add_argument("--databases", type=_positive_int, metavar="N",
                   help="the node's databases setting: SELECT must stay below it")
    p.add_argument("file")
    p.set_defaults(run=_check_aof)

    p = sub.add_parser("shootout", help="run every mode under the same faults and compare")
    p.add_argument("--modes", default="async,aof,sync,raft",
                   help="comma-separated, e.g. async,aof,sync,raft")
    p.add_argument("--keys", type=_positive_int, default=3, help="keys the clients share (default 3)")
    p.add_argument("--node-readers", type=_non_negative_int, default=0,
                   help="more clients per node that only read, each from its own node "
                        "(they see what a deposed leader or a follower answers)")
    p.add_argument("--schedule", default="split-brain",
                   help="a preset (split-brain, power-loss, ...) or 'random' (uses --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=_seconds, default=20.0,
                   help="seconds of workload per mode")
    p.add_argument("--workload", default="set",
                   help="register, cas-register, set or counter (linearizability is "
                        "checked for the two registers)")
    p.add_argument("--nodes", type=_positive_int, default=None,
                   help="nodes of each replicated mode (default 3); aof is always one node")
    p.add_argument("--clients", type=_positive_int, default=4)
    p.add_argument("--config", action="append", metavar="NAME=VALUE",
                   help="a Cluster keyword for every node of every mode, e.g. "
                        "--config appendfsync=always (repeatable; recorded in the JSON)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--html", default=None, metavar="PATH", help="also write an HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_shootout)

    p = sub.add_parser("raft-campaign",
                       help="randomized fault campaign for the Raft core in the simulator")
    p.add_argument("--seeds", type=_positive_int, default=400, help="how many seeds to run")
    p.add_argument("--steps", type=_positive_int, default=60, help="fault steps per seed")
    p.add_argument("--first-seed", type=_non_negative_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_raft_campaign)

    p = sub.add_parser("broker", help="an MQTT broker on 127.0.0.1 (amqtt) for design reviews")
    p.add_argument("--port", type=_non_negative_int, default=1883,
                   help="the port to listen on (default 1883; 0: any free one)")
    p.set_defaults(run=_broker)

    p = sub.add_parser("lab", help="JupyterLab on the tutorial notebooks; "
                                   "'lab list' and 'lab check' for the labs")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(run=_lab)
    lab_sub = p.add_subparsers(dest="lab_command")
    q = lab_sub.add_parser("list", help="the labs, their titles and claims")
    q.add_argument("--dir", default=os.path.join(REPO_ROOT, "labs"), help=argparse.SUPPRESS)
    q.set_defaults(lab_run=_lab_list)
    q = lab_sub.add_parser("check", help="run a lab's checks headless (exit 0 passed, "
                                         "1 not yet, 2 error)")
    q.add_argument("notebook", help="the lab notebook, e.g. labs/01-wait-is-not-a-promise.ipynb")
    q.add_argument("--solution", default=None, metavar="FILE",
                   help="put this file's '# cell: <id>' sections in place of the answer cells")
    q.add_argument("--json", default=None, metavar="PATH", help="also write the verdicts here")
    q.add_argument("--timeout", type=_seconds, default=600.0,
                   help="seconds a cell may run (default 600)")
    q.set_defaults(lab_run=_lab_check)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
