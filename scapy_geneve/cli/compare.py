"""``scapy-geneve compare``: the five encapsulations side by side.

Every number comes from :func:`scapy_geneve.tunnels.compare.compare`, which builds
the packets and measures them.  ``--plot FILE`` draws efficiency against
inner packet size: PNG/PDF/SVG through matplotlib (``pip install
scapy-geneve[plot]``); without matplotlib an ``.svg`` file is still written
by a small built-in renderer.
"""

import argparse
import json
import os
import sys
from typing import IO, List, Optional, Tuple

from scapy_geneve.cli._common import atomic_output
from scapy_geneve.tunnels.compare import DEFAULT_SIZES, Comparison, EncapsulationRow, compare

EXIT_OK, EXIT_ERROR = 0, 2


def _sizes(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not values:
        raise argparse.ArgumentTypeError("no sizes given")
    return values


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "compare", help="Geneve, VXLAN, NVGRE, STT, L2TPv3 side by side (overhead, MTU, ...)",
        description="Build the same inner frame in every encapsulation and compare header "
                    "overhead, inner MTU, efficiency, identifier width, extensibility, "
                    "stateless parsing, entropy source and transport. Every number is "
                    "measured on packets actually built.")
    p.add_argument("--inner-size", type=int, default=1400, metavar="N",
                   help="inner IP packet size for the headline columns (default 1400)")
    p.add_argument("--underlay", choices=("ipv4", "ipv6"), default="ipv4",
                   help="outer IP version (default ipv4)")
    p.add_argument("--mtu", type=int, default=1500, metavar="N",
                   help="underlay IP MTU (default 1500)")
    p.add_argument("--sizes", type=_sizes, metavar="N,N,...",
                   help="inner sizes of the efficiency curve (default %s)"
                        % ",".join(map(str, DEFAULT_SIZES)))
    p.add_argument("--plot", metavar="FILE",
                   help="write an efficiency-vs-inner-size plot (png/pdf/svg)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def _eff(row_eff: List[Tuple[int, Optional[float]]], size: int) -> str:
    for s, e in row_eff:
        if s == size:
            return "-" if e is None else "%.1f%%" % (e * 100)
    return "?"


def _stateless(row: EncapsulationRow) -> str:
    if not row.stateless:
        return "no"
    return "yes" if row.inner_in_every_packet else "1st seg"


def format_table(cmp: Comparison) -> str:
    """The comparison as a fixed-width text table with a legend."""
    head = ["encapsulation", "transport", "overhead", "inner MTU",
            "eff@%d" % cmp.inner_size, "pkts@%d" % cmp.inner_size, "id bits",
            "ext bytes", "stateless", "entropy"]
    lines = [head]
    for r in cmp.rows:
        pkts = dict(r.segments_at).get(cmp.inner_size)
        lines.append([r.name, r.transport, "%d B" % r.overhead, str(r.inner_mtu),
                      _eff(r.efficiency, cmp.inner_size), "-" if pkts is None else str(pkts),
                      str(r.id_bits), str(r.max_extension), _stateless(r),
                      ", ".join(r.entropy) or "none"])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["Underlay %s, MTU %d, inner packet %d bytes (inner Ethernet frame = +14)."
           % (cmp.underlay.upper().replace("IPV", "IPv"), cmp.mtu, cmp.inner_size), ""]
    for n, row in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out.append("")
    out.append("Efficiency (inner IP bytes / outer IP bytes) by inner packet size:")
    sizes = cmp.sizes
    header = ["size"] + [r.name for r in cmp.rows]
    grid = [header] + [[str(s)] + [_eff(r.efficiency, s) for r in cmp.rows] for s in sizes]
    w2 = [max(len(row[i]) for row in grid) for i in range(len(header))]
    for row in grid:
        out.append("  ".join(cell.rjust(w2[i]) for i, cell in enumerate(row)))
    out.append("")
    out.append("overhead: bytes added to the inner Ethernet frame (outer IP + transport + "
               "tunnel header).")
    out.append("inner MTU: largest inner IP packet sent without IP fragmentation; STT "
               "segments its 64 KB frames like TCP.")
    out.append("'-': does not fit the underlay MTU unfragmented. ext bytes: most bytes of "
               "metadata the header can grow by.")
    out.append("stateless: the inner frame is found from the wire alone (L2TPv3 needs the "
               "per-session cookie length and sublayer);")
    out.append("  '1st seg': only the first segment of a frame holds the inner headers (STT "
               "continuation segments are frame bytes: per-frame reassembly state).")
    for r in cmp.rows:
        out.append("  %-15s %s" % (r.name + ":", r.extensibility))
    return "\n".join(out) + "\n"


def _svg(cmp: Comparison, handle: IO[bytes]) -> None:
    """A dependency-free SVG line chart of efficiency against inner size."""
    width, height, left, bottom, top, right = 760, 440, 60, 50, 20, 170
    sizes = cmp.sizes
    xmin, xmax = min(sizes), max(sizes)
    ys = [e for r in cmp.rows for _, e in r.efficiency if e is not None]
    ymin = min(ys) if ys else 0.0
    ymin = max(0.0, (int(ymin * 10) / 10.0))

    def px(size: int) -> float:
        import math
        span = math.log(xmax) - math.log(xmin) or 1.0
        return left + (math.log(size) - math.log(xmin)) / span * (width - left - right)

    def py(eff: float) -> float:
        return top + (1.0 - (eff - ymin) / ((1.0 - ymin) or 1.0)) * (height - top - bottom)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif" font-size="12">' % (width, height),
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="%d" y="14">Encapsulation efficiency, %s underlay, MTU %d</text>'
             % (left, cmp.underlay, cmp.mtu)]
    parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
                 % (left, height - bottom, width - right, height - bottom))
    parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
                 % (left, top, left, height - bottom))
    for s in sizes:
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>'
                     % (px(s), height - bottom + 16, s))
    for k in range(6):
        eff = ymin + (1.0 - ymin) * k / 5
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>'
                     % (left - 4, py(eff) + 4, eff * 100))
    parts.append('<text x="%d" y="%d" text-anchor="middle">inner IP packet size (bytes, '
                 'log scale)</text>' % ((left + width - right) // 2, height - 12))
    for i, r in enumerate(cmp.rows):
        color = colors[i % len(colors)]
        pts = ["%.1f,%.1f" % (px(s), py(e)) for s, e in r.efficiency if e is not None]
        if pts:
            parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                         % (color, " ".join(pts)))
        parts.append('<text x="%d" y="%d" fill="%s">%s</text>'
                     % (width - right + 10, top + 20 + 18 * i, color, r.name))
    parts.append("</svg>\n")
    handle.write("\n".join(parts).encode())


def write_plot(cmp: Comparison, path: str) -> None:
    """Write the efficiency plot to PATH (atomically)."""
    try:
        import matplotlib  # noqa: F401  (optional extra)
        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        if not path.lower().endswith(".svg"):
            raise RuntimeError("matplotlib is not installed (pip install 'scapy-geneve[plot]'); "
                               "without it only an .svg plot can be written")
        with atomic_output(path) as handle:
            _svg(cmp, handle)
        return
    fig, ax = pyplot.subplots(figsize=(8, 5))
    for r in cmp.rows:
        pts = [(s, e * 100) for s, e in r.efficiency if e is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=r.name)
    ax.set_xscale("log")
    ax.set_xlabel("inner IP packet size (bytes)")
    ax.set_ylabel("efficiency (inner / outer IP bytes, %)")
    ax.set_title("Encapsulation efficiency, %s underlay, MTU %d" % (cmp.underlay, cmp.mtu))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else "png"
    with atomic_output(path) as handle:
        fig.savefig(handle, format=fmt)
    pyplot.close(fig)


def _can_plot(path: str) -> bool:
    if path.lower().endswith(".svg"):
        return True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plot_target_problem(path: str) -> Optional[str]:
    """Why PATH cannot be written (checked before any work), or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "%s: is a directory" % path
    if not os.path.isdir(directory):
        return "%s: directory %s does not exist" % (path, directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        return "%s: directory %s is not writable" % (path, directory)
    return None


def run(args: argparse.Namespace) -> int:
    if args.plot:
        problem = _plot_target_problem(args.plot)
        if problem is not None:
            print("scapy-geneve compare: error: --plot %s" % problem, file=sys.stderr)
            return EXIT_ERROR
    if args.plot and not _can_plot(args.plot):
        print("scapy-geneve compare: error: matplotlib is not installed (pip install "
              "'scapy-geneve[plot]'); without it only an .svg plot can be written",
              file=sys.stderr)
        return EXIT_ERROR
    try:
        cmp = compare(inner_size=args.inner_size, underlay=args.underlay, mtu=args.mtu,
                      sizes=args.sizes)
    except ValueError as exc:   # BuildError is a ValueError; main() formats it too
        print("scapy-geneve compare: error: %s" % exc, file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(cmp.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(cmp))
    if args.plot:
        try:
            write_plot(cmp, args.plot)
        except RuntimeError as exc:
            print("scapy-geneve compare: error: %s" % exc, file=sys.stderr)
            return EXIT_ERROR
        print("plot written to %s" % args.plot, file=sys.stderr)
    return EXIT_OK
