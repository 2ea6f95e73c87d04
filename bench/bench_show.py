"""``scapy-geneve show -n`` against ``tcpdump -nn -r``: decode and print the same file.

    python bench/bench_show.py [--packets 200000] [--full] [--repeat 3] [--keep]

Both read bench/gen_pcap.py's capture (200,000 packets by default; ``--full``:
the 1,000,000-packet file the other benches use) and write every line to
/dev/null; the best of ``--repeat`` wall-clock runs of each is compared, side by
side, and the ratio printed (> 1.0: show is faster).  The import time of the show
path (``python -X importtime``'s total, and whether Scapy is in it) is printed
too: it is paid once per run, so it matters most on small files.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_startup import best  # noqa: E402


def _import_time() -> Tuple[float, bool]:
    """Seconds to import the show path in a fresh interpreter as the command does (its
    entry module first: layers on first use); whether Scapy came with it."""
    code = (
        "import sys, time; t = time.perf_counter(); import scapy_geneve_main, scapy_geneve.cli.show; "
        "print(time.perf_counter() - t, 'scapy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--full", action="store_true", help="the 1,000,000-packet file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="keep (and reuse) the capture in DIR")
    args = parser.parse_args()
    if shutil.which("tcpdump") is None:
        print("tcpdump is not installed: nothing to compare with", file=sys.stderr)
        return 2
    packets = 1_000_000 if args.full else args.packets
    directory = args.keep or tempfile.mkdtemp(prefix="bench_show.")
    path = os.path.join(directory, "show_%d.pcap" % packets)
    try:
        if not os.path.exists(path):
            subprocess.run(
                [sys.executable, os.path.join(HERE, "gen_pcap.py"), path, "--packets", str(packets)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        show = [sys.executable, "-m", "scapy_geneve", "show", "-n", path]
        tcpdump = ["tcpdump", "-nn", "-r", path]
        imported, scapy = _import_time()
        t_show = best(show, args.repeat, check=True)
        t_tcpdump = best(tcpdump, args.repeat, check=True)
        print("file: %s (%d packets, %.1f MB)" % (path, packets, os.path.getsize(path) / 1e6))
        print("%-26s %9s %14s" % ("", "seconds", "packets/s"))
        for name, secs in (("tcpdump -nn -r", t_tcpdump), ("scapy-geneve show -n", t_show)):
            print("%-26s %9.2f %14.0f" % (name, secs, packets / secs))
        print("show / tcpdump speed: %.2fx (target >= 1.0x)" % (t_tcpdump / t_show))
        print(
            "import of the show path: %.2f s (Scapy %s)"
            % (
                imported,
                "imported" if scapy else "not imported; bench/bench_startup.py: start-up vs tcpdump, tshark",
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
