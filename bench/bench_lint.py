"""``scapy-geneve lint`` against tshark's expert pass and today's Scapy-walking lint, side by side.

    python bench/bench_lint.py [--packets 1000000] [--dir /tmp/scapy-geneve-bench]
                               [--repeat 1] [--reference-packets 3000] [--csum]

Generates (once) a realistic Geneve capture with bench/gen_pcap.py, then
measures, on the same file in the same run:

- ``cli-lint``       ``python -m scapy_geneve lint -q --summary FILE``, end to end;
- ``cli-start``      ``python -m scapy_geneve lint --list-rules``: the interpreter and
                     imports alone (what every command pays before the first packet);
- ``lint_capture``   the library call the CLI makes, in this process (no start-up);
- ``tshark-expert``  ``tshark -r FILE -q -z expert`` (Wireshark's own findings);
- ``tshark-expert-csum`` (``--csum``) the same with UDP checksum verification on,
                     the closest match to what lint checks;
- ``reference``      tests/lint_reference.py (the Scapy-walking lint lint replaced):
                     ``Ether(data)`` and its ``lint()`` on the first --reference-packets
                     records (it runs at a few thousand packets a second).

The default file is the project's benchmark size (1M packets, as bench_scan):
start-up (about a second, most of it importing Scapy through the package) is
then a small part of the run.  Each command is timed as wall-clock and as CPU
(user + system of the child), the best of --repeat runs.  The machine is shared, so wall-clock swings with its
load; CPU time is the steadier of the two.  The ratios say how many times faster
lint is than each of the others, for both.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)

Timing = Tuple[float, float]  # (wall, cpu) seconds


def time_cmd(cmd: List[str]) -> Timing:
    """Wall-clock and CPU (user + system) seconds of one run of CMD."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_call(fn: Callable[[], object]) -> Timing:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def best(fn: Callable[[], Timing], repeat: int) -> Timing:
    runs = [fn() for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def lint_capture_all(path: str) -> None:
    from scapy_geneve.conformance.lint_batch import lint_capture  # imported before timing

    for _ in lint_capture(path):
        pass


def reference_rate(path: str, limit: int) -> Tuple[int, Timing]:
    """Packets and time of the Scapy-walking reference on the first LIMIT records."""
    from scapy.config import conf
    from scapy.layers.l2 import Ether

    from scapy_geneve.capture import pcapio
    from tests import lint_reference

    frames = []
    for rec in pcapio.iter_records(path):
        frames.append(rec.data)
        if len(frames) >= limit:
            break
    conf.debug_dissector = False

    def run() -> None:
        for data in frames:
            lint_reference.lint(Ether(data))

    return len(frames), time_call(run)


def measure(path: str, args: argparse.Namespace) -> Dict[str, Tuple[int, Timing]]:
    n = args.packets
    cli = [sys.executable, "-m", "scapy_geneve", "lint"]
    import scapy_geneve.conformance.lint_batch  # noqa: F401  (not timed: the CLI rows pay it)

    rows: Dict[str, Tuple[int, Timing]] = {
        "cli-lint": (n, best(lambda: time_cmd(cli + ["-q", "--summary", path]), args.repeat)),
        "cli-start": (0, best(lambda: time_cmd(cli + ["--list-rules"]), args.repeat)),
        "lint_capture": (n, best(lambda: time_call(lambda: lint_capture_all(path)), args.repeat)),
    }
    tshark = shutil.which("tshark")
    if tshark:
        rows["tshark-expert"] = (
            n,
            best(lambda: time_cmd([tshark, "-r", path, "-q", "-z", "expert"]), args.repeat),
        )
        if args.csum:
            rows["tshark-expert-csum"] = (
                n,
                best(
                    lambda: time_cmd(
                        [tshark, "-r", path, "-o", "udp.check_checksum:TRUE", "-q", "-z", "expert"]
                    ),
                    args.repeat,
                ),
            )
    rows["reference"] = reference_rate(path, args.reference_packets)
    return rows


def report(path: str, rows: Dict[str, Tuple[int, Timing]]) -> None:
    print("%d packets (%s)" % (rows["cli-lint"][0], path))
    print("  %-20s %9s %9s %14s %14s" % ("", "wall s", "cpu s", "pkts/s wall", "pkts/s cpu"))
    for name, (n, (wall, cpu)) in rows.items():
        rate = ("%14.0f %14.0f" % (n / wall, n / cpu)) if n else "%14s %14s" % ("-", "-")
        print(
            "  %-20s %9.3f %9.3f %s" % (name + (" (%d)" % n if name == "reference" else ""), wall, cpu, rate)
        )
    print("how many times faster cli-lint is (same file, same run):")
    lint_n, (lint_wall, lint_cpu) = rows["cli-lint"]
    for other in ("tshark-expert", "tshark-expert-csum", "lint_capture", "reference"):
        if other not in rows:
            continue
        n, (wall, cpu) = rows[other]
        # per packet, so the reference's shorter run compares fairly; lint_capture is the
        # same work without start-up (below 1x: what start-up costs)
        print(
            "  vs %-18s %6.1fx wall  %6.1fx cpu"
            % (other, (wall / n) / (lint_wall / lint_n), (cpu / n) / (lint_cpu / lint_n))
        )
    start_wall, start_cpu = rows["cli-start"][1]
    print(
        "  (start-up is %.2f s wall / %.2f s cpu of cli-lint's %.2f / %.2f)"
        % (start_wall, start_cpu, lint_wall, lint_cpu)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1000000)
    ap.add_argument("--dir", default="/tmp/scapy-geneve-bench")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--reference-packets", type=int, default=3000)
    ap.add_argument("--csum", action="store_true", help="also time tshark with UDP checksum verification on")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "lint-%d.pcap" % args.packets)
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, os.path.join(HERE, "gen_pcap.py"), "--packets", str(args.packets), path],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    report(path, measure(path, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
