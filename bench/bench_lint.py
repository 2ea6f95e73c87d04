"""Side-by-side speed of the conformance linter against plain dissection and tshark.

    python bench/bench_lint.py [--packets 20000] [--dir /tmp/scapy-geneve-bench] [--repeat 3]

Generates (once) a realistic Geneve capture with bench/gen_pcap.py, then
measures, on the same file in the same run:

- ``dissect``       Scapy dissection of every record (``Ether(data)``), nothing else;
- ``dissect+lint``  the same plus ``lint()`` of every packet: what ``scapy-geneve lint`` does;
- ``cli-lint``      ``python -m scapy_geneve lint -q`` end to end (start-up and imports included);
- ``tshark-expert`` ``tshark -r FILE -q -z expert`` (Wireshark's own malformed/warning findings);
- ``tshark-expert-csum`` the same with UDP checksum verification on, the closest match to
                    what lint checks (GNV011/VXL006).

Prints packets per second and the ratios: what linting adds to dissection,
and how far the linter is from tshark's expert pass.  Each number is the
best of ``--repeat`` runs (the machine is shared).  Wall-clock, so only the
ratios (same run, same file, same cache) mean anything.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)


def _records(path: str):
    from scapy_geneve.capture import pcapio
    return [r.data for r in pcapio.iter_records(path)]


def time_dissect(frames) -> float:
    from scapy.config import conf
    from scapy.layers.l2 import Ether
    conf.debug_dissector = False
    start = time.perf_counter()
    for data in frames:
        Ether(data)
    return time.perf_counter() - start


def time_dissect_lint(frames) -> float:
    from scapy.config import conf
    from scapy.layers.l2 import Ether

    from scapy_geneve.conformance.lint import lint
    conf.debug_dissector = False
    start = time.perf_counter()
    for data in frames:
        lint(Ether(data))
    return time.perf_counter() - start


def time_cmd(cmd) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env=dict(os.environ, PYTHONPATH=ROOT))
    return time.perf_counter() - start


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--dir", default="/tmp/scapy-geneve-bench")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "lint-%d.pcap" % args.packets)
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_pcap.py"), "--packets", str(args.packets),
                        path], check=True, stdout=subprocess.DEVNULL)
    frames = _records(path)
    n = len(frames)
    rows = [("dissect", best(lambda: time_dissect(frames), args.repeat)),
            ("dissect+lint", best(lambda: time_dissect_lint(frames), args.repeat)),
            ("cli-lint", best(lambda: time_cmd([sys.executable, "-m", "scapy_geneve", "lint", "-q", path]),
                              args.repeat))]
    tshark = shutil.which("tshark")
    if tshark:
        rows.append(("tshark-expert", best(lambda: time_cmd([tshark, "-r", path, "-q", "-z", "expert"]),
                                           args.repeat)))
        rows.append(("tshark-expert-csum", best(lambda: time_cmd(
            [tshark, "-r", path, "-o", "udp.check_checksum:TRUE", "-q", "-z", "expert"]), args.repeat)))
    print("%d packets (%s)" % (n, path))
    for name, secs in rows:
        print("  %-20s %8.3f s  %10.0f packets/s" % (name, secs, n / secs))
    t = dict(rows)
    print("ratios:")
    print("  dissect+lint / dissect         %.2fx  (what linting adds to Scapy dissection)"
          % (t["dissect+lint"] / t["dissect"]))
    if "tshark-expert" in t:
        print("  cli-lint / tshark-expert       %.1fx  (slower than tshark's expert pass)"
              % (t["cli-lint"] / t["tshark-expert"]))
        print("  cli-lint / tshark-expert-csum  %.1fx" % (t["cli-lint"] / t["tshark-expert-csum"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
