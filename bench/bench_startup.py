"""Start-up: each pcap command on a small capture, side by side with tcpdump and tshark.

    python bench/bench_startup.py [--repeat 5] [--pcap pcaps/vxlan.pcap]

On a capture of a few packets the time is all start-up: the interpreter, the
imports, the parser.  Each line is the best of ``--repeat`` wall-clock runs of
one process, output to /dev/null; the ratio is against ``tcpdump -nn -r`` and
``tshark -n -r`` (> 1.0: ours is faster).  ``python -c pass`` (the interpreter
alone) and ``import scapy_geneve`` (the library, which binds every Scapy layer)
are the floor and the ceiling of what the commands can cost.  The commands run as
the console script runs them (``python -m scapy_geneve`` is the same entry), so
those that read captures with the wire decoder import no Scapy.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def best(cmd: List[str], repeat: int, check: bool = False) -> float:
    """The shortest wall-clock time of REPEAT runs of CMD (its output thrown away;
    CHECK: a failing run is an error)."""
    shortest = float("inf")
    with open(os.devnull, "wb") as null:
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, stdout=null, stderr=subprocess.DEVNULL, cwd=ROOT, check=check)
            shortest = min(shortest, time.perf_counter() - start)
    return shortest


def commands(pcap: str) -> Dict[str, List[str]]:
    ours = [sys.executable, "-m", "scapy_geneve"]
    runs = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import scapy_geneve": [sys.executable, "-c", "import scapy_geneve"],
        "show -n": ours + ["show", "-n", pcap],
        "stats -q": ours + ["stats", "-q", pcap],
        "filter --kind vxlan": ours + ["filter", "-q", "--kind", "vxlan", pcap, os.devnull],
        "lint": ours + ["lint", pcap],
    }
    if shutil.which("tcpdump"):
        runs["tcpdump -nn -r"] = ["tcpdump", "-nn", "-r", pcap]
    if shutil.which("tshark"):
        runs["tshark -n -r"] = ["tshark", "-n", "-r", pcap]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pcap", default=os.path.join(ROOT, "pcaps", "vxlan.pcap"))
    args = parser.parse_args()
    times = {name: best(cmd, args.repeat) for name, cmd in commands(args.pcap).items()}
    peers = [name for name in ("tcpdump -nn -r", "tshark -n -r") if name in times]
    print("file: %s; best of %d" % (args.pcap, args.repeat))
    print("%-22s %9s" % ("", "seconds") + "".join(" %16s" % ("vs " + p.split()[0]) for p in peers))
    for name, secs in times.items():
        ratios = "".join(" %15.2fx" % (times[p] / secs) for p in peers)
        print("%-22s %9.3f%s" % (name, secs, ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
