"""Many captures, many cores: ``--jobs 1`` against ``--jobs 2`` for stats, export, filter.

    python bench/bench_jobs.py [--dir /tmp/scapy-geneve-bench] [--files 4] [--packets 100000]
                               [--full]

Generates FILES captures of PACKETS packets each (bench/gen_pcap.py, one seed
per file), then runs each command end to end as a user does (``python -m
scapy_geneve ...``, start-up included), best of ``--repeat``, the two job
counts taking turns round after round so load changes hit both alike.  Prints
seconds, peak memory (max RSS of the main process), the speed-up and the
target (>= 1.7x on a 2-core machine).  ``export`` writes one Parquet file (the
workers scan, the parent encodes); ``export-dir`` writes a directory, one Parquet
file per capture, each encoded by the worker that scans it: the last lines put
the two side by side at each job count.  ``--full``: 8 files of 250,000 packets;
``--fleet``: 32 files of 250,000 packets (8M packets, about 5 GB: a directory of
rotated captures).  The speed-up needs two idle cores: on a machine that other
work keeps busy it shows what is left over.  The ``2x1`` row runs two ``--jobs 1``
commands at once, each on half the files (no pool, nothing shared but the
machine): its speed-up is what two cores give this work here, the ceiling for
``--jobs 2``.

Start-up (the interpreter, numpy, the command's modules; with ``--jobs 2`` the
pool) is paid once by either job count, so on a small set of files it holds the
speed-up down: the ``start-up`` column is the same command on two one-packet
captures.  The commands run
from compiled bytecode, as an installed package does (a ``PYTHONPYCACHEPREFIX``
in the temporary directory; ``PYTHONDONTWRITEBYTECODE`` would have every run
compile every module).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

COMMANDS = {
    "stats": ["stats", "-q", "--json"],
    "export": ["export", "-q", "-o", "{out}.parquet"],
    "export-dir": ["export", "-q", "-o", "{out}-dir/"],
    "filter": ["filter", "-q", "--kind", "geneve", "--option-class", "ovn"],
}


def files(folder: str, count: int, packets: int) -> List[str]:
    from gen_pcap import generate

    os.makedirs(folder, exist_ok=True)
    paths = []
    for k in range(count):
        path = os.path.join(folder, "jobs-%d-%d.pcap" % (packets, k))
        if not os.path.exists(path):
            print("generating %s ..." % path, file=sys.stderr)
            generate(path, packets, seed=k + 1)
        paths.append(path)
    return paths


def _argv(command: str, paths: List[str], jobs: int, out: str) -> List[str]:
    argv = (
        [sys.executable, "-m", "scapy_geneve"]
        + [a.format(out=out) for a in COMMANDS[command]]
        + ["--jobs", str(jobs)]
        + paths
    )
    return argv + [out + ".pcap"] if command == "filter" else argv


#: the commands' environment: bytecode cached in the temporary directory (``main`` sets it)
ENV: Dict[str, str] = {}


def run_once(command: str, paths: List[str], jobs: int, out: str) -> Tuple[float, float]:
    """(seconds, max RSS MB of the command's main process)."""
    argv = _argv(command, paths, jobs, out)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=ENV or None)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit("%s failed (status %d)" % (" ".join(argv), status))
    return seconds, usage.ru_maxrss / 1024


def run_pair(command: str, paths: List[str], out: str) -> float:
    """Two ``--jobs 1`` commands at once, each on half the files: no pool, nothing shared
    but the machine.  Their speed-up over one command is what two cores give here."""
    start = time.perf_counter()  # before the starts, as in run_once: start-up is part of the work
    procs = [
        subprocess.Popen(
            _argv(command, half, 1, "%s-%d" % (out, k)), stdout=subprocess.DEVNULL, env=ENV or None
        )
        for k, half in enumerate((paths[::2], paths[1::2]))
    ]
    statuses = [proc.wait() for proc in procs]  # both, even when the first failed
    seconds = time.perf_counter() - start
    if any(statuses):
        raise SystemExit("%s: a half failed (status %s)" % (command, statuses))
    return seconds


def tiny_captures(folder: str) -> List[str]:
    """Two one-packet captures: a command on them costs its start-up and little else."""
    from gen_pcap import generate

    paths = [os.path.join(folder, "tiny-%d.pcap" % k) for k in range(2)]
    for k, path in enumerate(paths):
        generate(path, 1, seed=k + 1)
    return paths


def startup(command: str, tiny: List[str], jobs: int, out: str, repeat: int) -> float:
    """Best of REPEAT runs of COMMAND at JOBS on the two tiny captures."""
    return min(run_once(command, tiny, jobs, out)[0] for _ in range(repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/scapy-geneve-bench")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="8 files of 250,000 packets")
    parser.add_argument("--fleet", action="store_true", help="32 files of 250,000 packets (about 5 GB)")
    parser.add_argument(
        "--commands", default=",".join(COMMANDS), help="which of %s (default: all)" % ", ".join(COMMANDS)
    )
    args = parser.parse_args()
    count, packets = (
        (32, 250_000) if args.fleet else (8, 250_000) if args.full else (args.files, args.packets)
    )
    paths = files(args.dir, count, packets)
    total = count * packets
    print("%d files x %d packets" % (count, packets))
    print(
        "%-10s %5s %9s %12s %10s %9s %9s"
        % ("command", "jobs", "seconds", "packets/s", "maxRSS MB", "speed-up", "start-up")
    )
    results: Dict[str, Dict[int, Tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ENV.update(os.environ, PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"))
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        tiny = tiny_captures(tmp)
        for command in args.commands.split(","):
            best = results[command] = {}
            pair = float("inf")
            start = {jobs: startup(command, tiny, jobs, os.path.join(tmp, "tiny"), 3) for jobs in (1, 2)}
            for _ in range(args.repeat):
                for jobs in (1, 2):
                    seconds, rss = run_once(command, paths, jobs, os.path.join(tmp, "out"))
                    old = best.get(jobs, (float("inf"), 0.0))
                    best[jobs] = (min(old[0], seconds), max(old[1], rss))
                if len(paths) > 1:  # each half needs a file (with none, a command reads stdin)
                    pair = min(pair, run_pair(command, paths, os.path.join(tmp, "pair")))
            for jobs in (1, 2):
                seconds, rss = best[jobs]
                speed = "" if jobs == 1 else "%.2fx" % (best[1][0] / seconds)
                print(
                    "%-10s %5d %9.3f %12.0f %10.1f %9s %9.3f"
                    % (command, jobs, seconds, total / seconds, rss, speed, start[jobs])
                )
            if pair == float("inf"):
                continue
            print(
                "%-10s %5s %9.3f %12.0f %10s %9s   (two --jobs 1 commands at once, half the files each)"
                % (command, "2x1", pair, total / pair, "", "%.2fx" % (best[1][0] / pair))
            )
    if "export" in results and "export-dir" in results:
        one, many = results["export"], results["export-dir"]
        print(
            "export-dir vs export (seconds, export / export-dir): --jobs 1 %.2fx, --jobs 2 %.2fx"
            % (one[1][0] / many[1][0], one[2][0] / many[2][0])
        )
    print(
        "target: --jobs 2 >= 1.7x --jobs 1 on 2 cores (load now: %s)"
        % " ".join("%.2f" % v for v in os.getloadavg())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
