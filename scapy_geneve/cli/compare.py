"""``scapy-geneve compare``: the five encapsulations side by side.

Every number comes from :func:`scapy_geneve.tunnels.compare.compare`, which builds
the packets and measures them.  ``--plot FILE`` draws efficiency against
inner packet size with matplotlib (the ``plot`` extra: ``pip install
'scapy-geneve[plot]'``), in the format FILE's suffix names (png, pdf, svg, ...).
Lines that coincide (Geneve and VXLAN have the same overhead, so do NVGRE and
L2TPv3 over IP with a 4-byte cookie) are drawn with their own markers and
dashes, a few points apart, and the figure says so; each line that ends says
why (the next inner size no longer fits the underlay MTU unfragmented).
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import scapy_geneve._api  # noqa: F401  (every layer and hook, as `import scapy_geneve` binds them)
from scapy_geneve.cli._common import atomic_output
from scapy_geneve.tunnels.compare import DEFAULT_SIZES, MTU_RANGE, Comparison, EncapsulationRow, compare

EXIT_OK, EXIT_ERROR = 0, 2


def _sizes(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text) from None
    if not values:
        raise argparse.ArgumentTypeError("no sizes given")
    return values


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "compare",
        help="Geneve, VXLAN, NVGRE, STT, L2TPv3 side by side (overhead, MTU, ...)",
        description="Build the same inner frame in every encapsulation and compare header "
        "overhead, inner MTU, efficiency, identifier width, extensibility, "
        "stateless parsing, entropy source and transport. Every number is "
        "measured on packets actually built.",
    )
    p.add_argument(
        "--inner-size",
        type=int,
        default=1400,
        metavar="N",
        help="inner IP packet size for the headline columns (default 1400)",
    )
    p.add_argument(
        "--underlay", choices=("ipv4", "ipv6"), default="ipv4", help="outer IP version (default ipv4)"
    )
    p.add_argument(
        "--mtu",
        type=int,
        default=1500,
        metavar="N",
        help="underlay IP MTU, %d..%d (default 1500)" % MTU_RANGE,
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N,N,...",
        help="inner sizes of the efficiency curve (default %s)" % ",".join(map(str, DEFAULT_SIZES)),
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="write an efficiency-vs-inner-size plot; the suffix chooses the format "
        "(png, pdf, svg, ...; needs the 'plot' extra)",
    )
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


_HEAD = (
    "encapsulation",
    "transport",
    "overhead",
    "inner MTU",
    "eff@%d",
    "pkts@%d",
    "id bits",
    "ext bytes",
    "tunnel hdr",
    "stateless",
    "entropy",
)
_LEGEND = (
    "overhead: bytes added to the inner Ethernet frame (outer IP + transport + tunnel header).",
    "inner MTU: largest inner IP packet sent without IP fragmentation; STT segments its 64 KB "
    "frames like TCP.",
    "'-': does not fit the underlay MTU unfragmented. ext bytes: most bytes of metadata the "
    "header can grow by.",
    "tunnel hdr: the fixed tunnel header after UDP/TCP/IP (the registry's), options excluded.",
    "stateless: the inner frame is found from the wire alone (L2TPv3 needs the per-session "
    "cookie length and sublayer);",
    "  '1st seg': only the first segment of a frame holds the inner headers (STT continuation "
    "segments are frame bytes: per-frame reassembly state).",
)


def _cells(r: EncapsulationRow, inner_size: int) -> List[str]:
    pkts = dict(r.segments_at).get(inner_size)
    return [
        r.name,
        r.transport,
        "%d B" % r.overhead,
        str(r.inner_mtu),
        _eff(r.efficiency, inner_size),
        "-" if pkts is None else str(pkts),
        str(r.id_bits),
        str(r.max_extension),
        "%d B" % r.header_len,
        _stateless(r),
        ", ".join(r.entropy) or "none",
    ]


def _columns(rows: List[List[str]], right: bool = False, rule_after: int = -1) -> List[str]:
    """ROWS as fixed-width text lines (a rule of dashes after row RULE_AFTER)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    pad = str.rjust if right else str.ljust
    lines = ["  ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    if rule_after >= 0:
        lines.insert(rule_after + 1, "  ".join("-" * w for w in widths))
    return lines


def format_table(cmp: Comparison) -> str:
    """The comparison as a fixed-width text table with a legend."""
    head = [h % cmp.inner_size if "%d" in h else h for h in _HEAD]
    table = _columns([head] + [_cells(r, cmp.inner_size) for r in cmp.rows], rule_after=0)
    grid = [["size"] + [r.name for r in cmp.rows]] + [
        [str(s)] + [_eff(r.efficiency, s) for r in cmp.rows] for s in cmp.sizes
    ]
    out = [
        "Underlay %s, MTU %d, inner packet %d bytes (inner Ethernet frame = +14)."
        % (cmp.underlay.upper().replace("IPV", "IPv"), cmp.mtu, cmp.inner_size),
        "",
        *table,
        "",
        "Efficiency (inner IP bytes / outer IP bytes) by inner packet size:",
        *_columns(grid, right=True),
        "",
        *_LEGEND,
        *("  %-15s %s" % (r.name + ":", r.extensibility) for r in cmp.rows),
    ]
    return "\n".join(out) + "\n"


PLOT_EXTRA = "pip install 'scapy-geneve[plot]'"
_STYLES = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-."), ("*", ":")]
_NUDGE_PT = 3.0  # display offset between coinciding lines, in points


class PlotError(Exception):
    """The plot cannot be written: the message says why and what would work."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError("--plot needs matplotlib, the 'plot' extra (%s)" % PLOT_EXTRA) from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def plot_formats() -> Dict[str, str]:
    """The file suffixes matplotlib writes, with their names (needs the plot extra)."""
    _pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return dict(FigureCanvasAgg.get_supported_filetypes())


def _plot_format(path: str) -> str:
    """PATH's suffix, if matplotlib writes it; else PlotError naming the ones that work."""
    formats = plot_formats()
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix not in formats:
        raise PlotError(
            "%s: cannot plot to %s: the suffix chooses the format, one of %s"
            % (
                path,
                "a file without a suffix" if not suffix else "." + suffix,
                ", ".join("." + f for f in sorted(formats)),
            )
        )
    return suffix


def _coinciding(rows: List[EncapsulationRow]) -> Dict[str, Tuple[str, int]]:
    """Rows whose curve is exactly an earlier row's: name -> (that row, rank among them)."""
    first: Dict[Tuple[Any, ...], str] = {}
    rank: Dict[str, int] = {}
    out: Dict[str, Tuple[str, int]] = {}
    for r in rows:
        key = tuple(r.efficiency)
        if key in first:
            rank[first[key]] = rank.get(first[key], 0) + 1
            out[r.name] = (first[key], rank[first[key]])
        else:
            first[key] = r.name
    return out


def _why_it_ends(r: EncapsulationRow, cmp: Comparison) -> Optional[str]:
    """Why R's line stops before the largest size, or None when it does not."""
    carried = [s for s, e in r.efficiency if e is not None]
    if not carried or carried[-1] == max(cmp.sizes):
        return None
    if r.kind == "stt":
        return "%s: ends at %d: a larger inner packet no longer fits one 64 KB STT frame" % (
            r.name,
            carried[-1],
        )
    return (
        "%s: ends at %d: an inner packet over %d bytes (+14 Ethernet, +%d overhead) "
        "exceeds the %d-byte MTU and would need IP fragmentation"
        % (r.name, carried[-1], r.inner_mtu, r.overhead, cmp.mtu)
    )


def efficiency_figure(cmp: Comparison) -> Any:
    """A matplotlib Figure: efficiency (%) against inner packet size, every row visible."""
    pyplot = _pyplot()
    from matplotlib.transforms import offset_copy

    fig, ax = pyplot.subplots(figsize=(9, 6.5))
    same = _coinciding(cmp.rows)
    for i, r in enumerate(cmp.rows):
        pts = [(s, e * 100) for s, e in r.efficiency if e is not None]
        marker, dash = _STYLES[i % len(_STYLES)]
        label, transform = r.name, ax.transData
        if r.name in same:
            twin, rank = same[r.name]
            label = "%s (same values as %s; drawn %g pt higher)" % (r.name, twin, _NUDGE_PT * rank)
            transform = offset_copy(ax.transData, fig=fig, y=_NUDGE_PT * rank, units="points")
        (line,) = ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=marker,
            linestyle=dash,
            markersize=6,
            markerfacecolor="none",
            label=label,
            transform=transform,
        )
        if pts and _why_it_ends(r, cmp):
            ax.plot(
                [pts[-1][0]],
                [pts[-1][1]],
                marker="x",
                markersize=11,
                color=line.get_color(),
                transform=transform,
            )
    ax.set_xscale("log")
    ax.set_xlabel("inner IP packet size (bytes, log scale)")
    ax.set_ylabel("efficiency (inner IP bytes / outer IP bytes, %)")
    ax.set_title(
        "Encapsulation efficiency, %s underlay, MTU %d" % (cmp.underlay.replace("ipv", "IPv"), cmp.mtu)
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    notes = [n for n in (_why_it_ends(r, cmp) for r in cmp.rows) if n]
    if notes:
        fig.text(
            0.01,
            0.01,
            "Why lines end (x = the last size carried whole):\n" + "\n".join(notes),
            fontsize=7,
            va="bottom",
            ha="left",
        )
        fig.subplots_adjust(bottom=0.1 + 0.02 * (len(notes) + 1), top=0.94)
    return fig


def write_plot(cmp: Comparison, path: str) -> None:
    """Write the efficiency plot to PATH (atomically), in the format its suffix names."""
    fmt = _plot_format(path)
    fig = efficiency_figure(cmp)
    try:
        with atomic_output(path) as handle:
            fig.savefig(handle, format=fmt)
    finally:
        _pyplot().close(fig)


def _plot_target_problem(path: str) -> Optional[str]:
    """Why PATH cannot be written (checked before any work), or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "%s: is a directory" % path
    if not os.path.isdir(directory):
        return "%s: directory %s does not exist" % (path, directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        return "%s: directory %s is not writable" % (path, directory)
    try:
        _plot_format(path)
    except PlotError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    if args.plot:
        problem = _plot_target_problem(args.plot)
        if problem is not None:
            print("scapy-geneve compare: error: --plot %s" % problem, file=sys.stderr)
            return EXIT_ERROR
    try:
        cmp = compare(inner_size=args.inner_size, underlay=args.underlay, mtu=args.mtu, sizes=args.sizes)
    except ValueError as exc:  # BuildError is a ValueError; main() formats it too
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
        except (PlotError, OSError) as exc:
            print("scapy-geneve compare: error: --plot %s" % exc, file=sys.stderr)
            return EXIT_ERROR
        print("plot written to %s" % args.plot, file=sys.stderr)
    return EXIT_OK
