"""``workbench`` on the command line.

    workbench lab                       JupyterLab on the tutorial notebooks
    workbench cluster --mode async      a cluster in this terminal, for redis-cli
    workbench check-aof [--fix] FILE    check (and cut back) an append-only file
    workbench shootout --modes async,aof --schedule split-brain --seed 7 --duration 20
                                        every mode under the same faults, side by side
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cluster(args) -> int:
    from .cluster import Cluster
    configs = {}
    for item in args.config or []:
        if "=" not in item:
            print(f"--config takes NAME=VALUE, not {item!r}", file=sys.stderr)
            return 2
        name, value = item.split("=", 1)
        configs[name.replace("-", "_")] = value
    try:
        cluster = Cluster(mode=args.mode, nodes=args.nodes, data_dir=args.data_dir,
                          down_after_ms=args.down_after_ms, **configs)
    except ValueError as err:
        print(f"workbench cluster: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"{args.mode} cluster of {args.nodes} node(s), data in {cluster.data_dir}")
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
    return check_aof.main((["--fix"] if args.fix else []) + [args.file])


def _shootout(args) -> int:
    import json
    from .history import report, shootout
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        shootout.validate(modes, args.schedule, args.workload)
    except ValueError as err:
        print(f"workbench shootout: {err}", file=sys.stderr)
        return 2
    results = shootout.run(modes, args.schedule, seed=args.seed, duration=args.duration,
                           workload=args.workload, nodes=args.nodes, clients=args.clients,
                           progress=not args.quiet)
    print(report.table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(results), f, indent=2)
        print(f"JSON written to {args.json}")
    if args.html:
        report.html(results, args.html)
        print(f"HTML report written to {args.html}")
    return 0


def _raft_campaign(args) -> int:
    from .raft import campaign
    argv = ["--seeds", str(args.seeds), "--steps", str(args.steps),
            "--first-seed", str(args.first_seed)] + (["--no-progress"] if args.quiet else [])
    return campaign.main(argv)


def _lab(args) -> int:
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
    p.add_argument("--mode", default="async")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--down-after-ms", type=int, default=1000)
    p.add_argument("--config", action="append", metavar="NAME=VALUE",
                   help="a node config, e.g. --config appendfsync=always (repeatable)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop by itself after this many seconds")
    p.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    p.set_defaults(run=_cluster)

    p = sub.add_parser("check-aof", help="check an append-only file, like valkey-check-aof")
    p.add_argument("--fix", action="store_true", help="cut the file back to its valid part")
    p.add_argument("file")
    p.set_defaults(run=_check_aof)

    p = sub.add_parser("shootout", help="run every mode under the same faults and compare")
    p.add_argument("--modes", default="async,aof", help="comma-separated, e.g. async,aof")
    p.add_argument("--schedule", default="split-brain",
                   help="a preset (split-brain, power-loss, ...) or 'random' (uses --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of workload per mode")
    p.add_argument("--workload", default="set", help="register, set or counter")
    p.add_argument("--nodes", type=int, default=3, help="nodes for replicated modes")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--html", default=None, metavar="PATH", help="also write an HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_shootout)

    p = sub.add_parser("raft-campaign",
                       help="randomized fault campaign for the Raft core in the simulator")
    p.add_argument("--seeds", type=int, default=400, help="how many seeds to run")
    p.add_argument("--steps", type=int, default=60, help="fault steps per seed")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_raft_campaign)

    p = sub.add_parser("lab", help="JupyterLab on the tutorial notebooks")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(run=_lab)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
