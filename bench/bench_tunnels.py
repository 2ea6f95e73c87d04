#!/usr/bin/env python3
"""Side-by-side timings for the comparison layers, in one run, printed as ratios.

    python bench/bench_tunnels.py [N]

1. encapsulate() against stacking the same Scapy layers by hand (API cost);
2. dissecting NVGRE (our GRE profile) against Scapy's GRE on the same bytes;
3. L2TPv3 data dissection (session-table lookup) against NVGRE of the same size;
4. stt_reassemble()'s overlap check on one frame cut into n one-byte segments
   (sorted offsets, n log n) against the scan of every chunk it replaced (n²);
5. stt_reassemble() against tshark's STT reassembly (-2) of the same capture,
   if tshark is installed (its start-up time is measured and reported apart).
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from scapy_geneve import NVGRE, build_vxlan, encapsulate, entropy_sport
from scapy_geneve.offload.stt import _Pending, stt_reassemble, stt_segment
from scapy_geneve.tunnels.l2tpv3 import l2tpv3_session

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
INNER = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1000, dport=2000)
    / Raw(b"x" * 64)
)


def timed(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    """Seconds per call: the best of REPEAT loops of N calls (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def best_run(cmd: list, repeat: int = 3) -> tuple:
    """(seconds, CompletedProcess) of the fastest of REPEAT runs of CMD."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, check=True, text=True)
        best = min(best, time.perf_counter() - t0)
    return best, out


def row(label: str, ours: float, base: float, base_label: str) -> None:
    print(
        "%-46s %9.1f us   %-28s %9.1f us   ratio %.2f"
        % (label, ours * 1e6, base_label, base * 1e6, ours / base)
    )


def _naive_fill(n: int) -> None:
    """The overlap check stt_reassemble() had: every chunk scanned for each segment."""
    chunks: dict = {}
    for offset in range(n - 1, -1, -1):
        if [o for o, c in chunks.items() if o < offset + 1 and offset < o + len(c)]:
            raise RuntimeError("overlap")
        chunks[offset] = b"x"


def _sorted_fill(n: int) -> None:
    state = _Pending(n)
    for offset in range(n - 1, -1, -1):
        if state.clash(offset, b"x") is not None:
            raise RuntimeError("overlap")
        state.add(offset, b"x", False)


def overlap_scaling() -> None:
    print()
    for n in (1024, 2048, 4096):
        ours = timed(lambda n=n: _sorted_fill(n), 1, repeat=1)
        base = timed(lambda n=n: _naive_fill(n), 1, repeat=1)
        row("overlap check, 1 frame in %d 1-byte segments" % n, ours, base, "scan of every chunk (before)")
    ours = timed(lambda: _sorted_fill(32768), 1, repeat=1)
    print(
        "overlap check, 1 frame in 32768 1-byte segments: %.2f s (the scan took 36 s "
        "end to end in issue 12)" % ours
    )
    print()


def main() -> None:
    print("N = %d per measurement\n" % N)
    # 1. encapsulate() vs hand-stacked layers (both built to bytes)
    ours = timed(lambda: bytes(encapsulate(INNER, "vxlan", vni=42)), N)
    base = timed(
        lambda: bytes(
            IP(src="192.0.2.1", dst="192.0.2.2", flags="DF", id=0)
            / UDP(sport=entropy_sport(INNER), dport=4789, chksum=0)
            / build_vxlan(42)
            / INNER
        ),
        N,
    )
    row("encapsulate(inner, 'vxlan') -> bytes", ours, base, "hand-stacked layers")

    # 2. NVGRE dissection vs Scapy's GRE on identical bytes
    wire = bytes(IP() / NVGRE(vsid=0xABCD, flowid=1) / INNER)
    gre_only = wire[20:]
    ours = timed(lambda: NVGRE(gre_only), N)
    base = timed(lambda: GRE(gre_only), N)
    row("NVGRE(bytes) (dispatch + vsid/flowid)", ours, base, "scapy GRE(bytes)")
    keyed = bytes(
        IP() / GRE(key_present=1, key=0xABCD01, proto=0x6558, chksum_present=1) / INNER
    )  # the same inner frame in a GRE that is not NVGRE-shaped
    ours = timed(lambda: IP(wire), N)
    base = timed(lambda: IP(keyed), N)
    row("IP(bytes) of an NVGRE packet", ours, base, "IP(bytes) GRE+csum, same inner")

    # 3. L2TPv3 (table lookup for cookie and sublayer) vs NVGRE, same inner
    l2tpv3_session(0x1234, cookie_len=4, l2ss=True)
    l2 = bytes(encapsulate(INNER, "l2tpv3", session_id=0x1234, cookie=b"abcd", sequence=1))
    ours = timed(lambda: IP(l2), N)
    base = timed(lambda: IP(wire), N)
    row("IP(bytes) of an L2TPv3 packet (cookie + L2SS)", ours, base, "IP(bytes) NVGRE")

    # 4. the overlap check: sorted offsets vs scanning every chunk (issue 12)
    overlap_scaling()

    # 5. STT reassembly vs tshark
    frames = max(N // 2, 10)
    inner = INNER[Ether].copy()
    inner[Raw].load = b"y" * 6000
    segs = []
    for i in range(frames):
        segs += stt_segment(inner, context_id=i, identifier=i + 1, mss=1460)
    start = time.perf_counter()
    done = stt_reassemble(segs)
    ours = (time.perf_counter() - start) / frames
    assert len(done.frames) == frames
    tshark = shutil.which("tshark")
    if tshark is None:
        print(
            "\nstt_reassemble: %.1f us per frame (%d segments); tshark not installed"
            % (ours * 1e6, len(segs))
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stt.pcap"
        outer = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        wrpcap(str(path), [outer / s for s in segs])
        empty = Path(tmp) / "empty.pcap"
        wrpcap(str(empty), [outer / segs[0]])
        cmd = [
            tshark,
            "-n",
            "-o",
            "ip.try_heuristic_first:TRUE",
            "-2",
            "-T",
            "fields",
            "-e",
            "stt.reassembled.length",
            "-r",
        ]
        startup, _ = best_run(cmd + [str(empty)])
        total, out = best_run(cmd + [str(path)])
    got = sum(1 for line in out.stdout.splitlines() if line.strip())
    assert got == frames, (got, frames)
    print()
    if total - startup > 0.1 * total:
        row(
            "stt_reassemble() per 6 KB frame (5 segments)",
            ours,
            (total - startup) / frames,
            "tshark -2 (minus start-up)",
        )
    else:
        print(
            "tshark's own per-frame time is within its start-up noise at %d frames: "
            "run with a larger N for that ratio" % frames
        )
    row("stt_reassemble() per frame, tshark start-up in", ours, total / frames, "tshark -2 whole run")
    print(
        "  (tshark start-up %.0f ms, whole run %.0f ms for %d frames)" % (startup * 1e3, total * 1e3, frames)
    )


if __name__ == "__main__":
    main()
