"""The command-line options every command shares, defined once.

Each ``add_*`` function adds an option group to an :mod:`argparse` parser; the
matching function without ``add_`` turns the parsed arguments into values.
Values are checked while parsing, so a bad value is a usage error (exit 2,
argparse's message naming the option), never a traceback.

Decoding (``add_port_options`` / ``ports``; ``add_l2tp_options`` / ``l2tp``;
``scan_kwargs`` gives both as the keyword arguments of the capture functions)
    ``--geneve-port``, ``--vxlan-port``, ``--gpe-port``, ``--stt-port``,
    ``--l2tp-port``: one option per registry record that has a ``port_option``.
    Values are decimal or 0x-hex (:func:`scapy_geneve.registry.parse_port`),
    repeatable or comma-separated, and ADD to the registry's default ports: the
    result is a :class:`scapy_geneve.registry.Ports`.
    ``--l2tp-cookie 0|4|8`` and ``--l2tp-l2ss``: what an L2TPv3 receiver knows out
    of band (the cookie length and the Default L2-Specific Sublayer).

Selection (``add_selection_options`` / ``packet_filter``)
    ``--vni N``, ``--kind K``, ``--option-class C``, ``--option-type T``,
    ``--malformed``, ``--invert``.  ``--option-class`` takes a number or an IANA
    registry name: ``ovn``, ``ovs``, ``linux``, ``amazon`` (every class that owner
    holds), ``"Open Virtual Networking (OVN)"``.  Identifiers out of the width the
    registry gives their kind (VNI 24 bits, STT context 64, L2TPv3 session 32, or
    the widest without ``--kind``) are refused.

tcpdump's habits (``add_count_option`` ``-c N``, N >= 1; ``add_numeric_option``
``-n``: numeric ports; ``add_quiet_option`` ``-q``: no progress bar and no
summary on standard error, only the results; ``add_time_options`` /
``time_format``)
    ``-t`` no time, ``-tt`` seconds since the epoch, ``-ttt`` delta since the
    previous packet, ``-tttt`` date and time with the zone, ``-ttttt`` delta since
    the first packet; the default is tcpdump's ``HH:MM:SS.ffffff``.  Times are
    local time unless ``--utc`` (help and ``-tttt`` say which).

Files (``add_input`` / ``input_path``; ``add_output`` / ``output_path``;
``add_format_option`` / ``output_format``)
    ``-r FILE`` is the positional IN, ``-w FILE`` the positional OUT (giving both
    spellings is a usage error).  ``-F pcap|pcapng`` chooses the output format;
    otherwise the output name does (``.pcap``, ``.pcapng``, either with ``.gz``
    for gzip); otherwise the input's.
"""

import argparse
import datetime
import os
import re
import sys
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, NoReturn, Optional, Tuple

from scapy_geneve import registry
from scapy_geneve.consts import OPTION_CLASS_RANGES

__all__ = [
    "add_port_options",
    "ports",
    "add_l2tp_options",
    "l2tp",
    "add_decoding_options",
    "scan_kwargs",
    "check_identifiers",
    "add_selection_options",
    "packet_filter",
    "selected_kinds",
    "option_classes",
    "identifiers",
    "selecting",
    "add_count_option",
    "positive_int",
    "add_numeric_option",
    "add_quiet_option",
    "add_time_options",
    "time_format",
    "TimeFormat",
    "add_input",
    "input_path",
    "add_output",
    "output_path",
    "add_format_option",
    "output_format",
    "OutputFormat",
    "usage_error",
    "FORMATS",
]

FORMATS = ("pcap", "pcapng")


def usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    """Print ``scapy-geneve CMD: error: MESSAGE`` and exit 2, as argparse does."""
    print("scapy-geneve %s: error: %s" % (getattr(args, "command", "") or "", message), file=sys.stderr)
    raise SystemExit(2)


def _split(text: str) -> List[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


# -- decoding: ports and L2TPv3 ------------------------------------------------------------
def _port_list(text: str) -> List[int]:
    try:
        return [registry.parse_port(part) for part in _split(text)]
    except registry.PortError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port_records() -> List[registry.Encapsulation]:
    return [rec for rec in registry.records() if rec.port_option]


def _port_dest(rec: registry.Encapsulation) -> str:
    return (rec.port_option or "").lstrip("-").replace("-", "_")


def add_port_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """One ``--KIND-port`` option per registry record; ports ADD to the defaults."""
    group = parser.add_argument_group(
        "decoding", "Ports add to the defaults (decimal or 0x hex; repeat or use commas)."
    )
    for rec in _port_records():
        proto = "TCP" if rec.tcp_ports else "UDP"
        side = "source or destination port" if rec.either_port else "destination port"
        group.add_argument(
            rec.port_option or "",
            dest=_port_dest(rec),
            type=_port_list,
            action="append",
            default=[],
            metavar="PORT",
            help="also read %s %s PORT as %s (always: %s)"
            % (proto, side, rec.title, ", ".join(str(p) for p in sorted(rec.ports))),
        )
    return group


def ports(args: argparse.Namespace) -> registry.Ports:
    """The registry's default ports plus every port option in ARGS."""
    extra: Dict[str, List[int]] = {}
    for rec in _port_records():
        values = [p for chunk in getattr(args, _port_dest(rec), []) or [] for p in chunk]
        if values and rec.ports_key:
            extra.setdefault(rec.ports_key, []).extend(values)
    return registry.DEFAULT_PORTS.extended(**extra)


def add_l2tp_options(
    parser: argparse.ArgumentParser, group: Optional[argparse._ArgumentGroup] = None
) -> None:
    """``--l2tp-cookie`` and ``--l2tp-l2ss``: what an L2TPv3 receiver knows out of band."""
    target = group if group is not None else parser
    target.add_argument(
        "--l2tp-cookie",
        type=int,
        choices=(0, 4, 8),
        default=0,
        metavar="0|4|8",
        help="L2TPv3 cookie length in bytes (not on the wire; default 0)",
    )
    target.add_argument(
        "--l2tp-l2ss", action="store_true", help="L2TPv3 data packets carry the Default L2-Specific Sublayer"
    )


def l2tp(args: argparse.Namespace) -> Tuple[int, bool]:
    """(cookie length, L2SS present) from ARGS."""
    return int(getattr(args, "l2tp_cookie", 0) or 0), bool(getattr(args, "l2tp_l2ss", False))


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    """Ports and L2TPv3 framing: everything a decoder needs besides the bytes."""
    add_l2tp_options(parser, add_port_options(parser))


def scan_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """``ports``, ``l2tp_cookie``, ``l2tp_l2ss`` for the capture functions."""
    cookie, l2ss = l2tp(args)
    return {"ports": ports(args), "l2tp_cookie": cookie, "l2tp_l2ss": l2ss}


# -- selection --------------------------------------------------------------------------
def _number(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number (decimal or 0x hex)" % text) from None


def identifiers(text: str) -> List[int]:
    """``--vni``: comma-separated identifiers, none negative or wider than 64 bits."""
    widest = max(rec.id_max for rec in registry.records())
    values = [_number(part) for part in _split(text)]
    for value in values:
        if not 0 <= value <= widest:
            raise argparse.ArgumentTypeError("identifier %d is out of range (0-%d)" % (value, widest))
    return values


def selected_kinds(text: str) -> List[str]:
    """``--kind``: canonical registry names from names or aliases."""
    try:
        return [registry.get(part).name for part in _split(text)]
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def _normal(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _owner_matches(owner: str, query: str) -> bool:
    abbrev = re.findall(r"\(([^)]*)\)", owner)
    if any(_normal(a) == query for a in abbrev):
        return True
    return _normal(owner).startswith(query)


def option_classes(text: str) -> List[int]:
    """``--option-class``: numbers or IANA registry names (``ovn``, ``amazon``).

    A name stands for every class its owner holds; a name that fits several
    owners is refused, naming them.
    """
    values: List[int] = []
    for part in _split(text):
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)", part):
            value = int(part, 0)
            if not 0 <= value <= 0xFFFF:
                raise argparse.ArgumentTypeError("option class %s is not a 16-bit value (0-0xffff)" % part)
            values.append(value)
            continue
        query = _normal(part)
        hits = [
            (lo, hi, owner) for lo, hi, owner in OPTION_CLASS_RANGES if query and _owner_matches(owner, query)
        ]
        owners = sorted({owner for _lo, _hi, owner in hits})
        if not owners:
            raise argparse.ArgumentTypeError(
                "%r is neither a number nor a Geneve option class owner in the IANA "
                "registry (e.g. ovn, ovs, linux, amazon)" % part
            )
        if len(owners) > 1:
            raise argparse.ArgumentTypeError(
                "%r fits several option class owners: %s" % (part, "; ".join(owners))
            )
        values.extend(c for lo, hi, _owner in hits for c in range(lo, hi + 1))
    return values


def _option_types(text: str) -> List[int]:
    values = [_number(part) for part in _split(text)]
    for value in values:
        if not 0 <= value <= 0xFF:
            raise argparse.ArgumentTypeError("option type %d is not an 8-bit value (0-0xff)" % value)
    return values


def add_selection_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The packet-selection options (``filter``, ``show``)."""
    group = parser.add_argument_group(
        "selection",
        "Values of one option are OR-ed (repeat it or use commas); different "
        "options are AND-ed.  Numbers are decimal or 0x hex.",
    )
    group.add_argument(
        "--vni",
        type=identifiers,
        action="append",
        default=[],
        metavar="N",
        help="identifier: "
        + ", ".join("%s %s (%d bits)" % (rec.title, rec.id_title, rec.id_bits) for rec in registry.records()),
    )
    group.add_argument(
        "--option-class",
        type=option_classes,
        action="append",
        default=[],
        metavar="C",
        help="has a Geneve option of class C: a number (0x0102) "
        "or an IANA owner name (ovn, ovs, linux, amazon)",
    )
    group.add_argument(
        "--option-type",
        type=_option_types,
        action="append",
        default=[],
        metavar="T",
        help="has a Geneve option of type T, the 8-bit wire value "
        "(0x80 bit = critical); with --option-class, the "
        "same option must match both",
    )
    group.add_argument(
        "--kind",
        type=selected_kinds,
        action="append",
        default=[],
        metavar="K",
        help="encapsulation: %s" % ", ".join(registry.names()),
    )
    group.add_argument("--malformed", action="store_true", help="only malformed packets")
    group.add_argument(
        "--invert",
        action="store_true",
        help="select the packets that do NOT match (e.g. everything but a VNI)",
    )
    return group


def _flat(lists: Iterable[Iterable[Any]]) -> List[Any]:
    return [value for values in lists or [] for value in values]


def check_identifiers(args: argparse.Namespace) -> None:
    """Refuse ``--vni`` values wider than every ``--kind`` given (exit 2)."""
    kinds = [registry.get(k) for k in _flat(args.kind)]
    if not kinds:
        return
    widest = max(kinds, key=lambda rec: rec.id_bits)
    for value in _flat(args.vni):
        if value > widest.id_max:
            usage_error(
                args,
                "--vni %d does not fit in %s's %s (%d bits, 0-%d)"
                % (value, widest.title, widest.id_title, widest.id_bits, widest.id_max),
            )


def selecting(args: argparse.Namespace) -> bool:
    """Whether any selection option was given (without importing the scan)."""
    return bool(
        _flat(args.vni)
        or _flat(args.kind)
        or _flat(args.option_class)
        or _flat(args.option_type)
        or args.malformed
        or args.invert
    )


def packet_filter(args: argparse.Namespace) -> Any:
    """A :class:`scapy_geneve.capture.scan.PacketFilter` from the selection options."""
    from scapy_geneve.capture.scan import PacketFilter

    check_identifiers(args)
    try:
        return PacketFilter(
            vni=_flat(args.vni),
            kind=_flat(args.kind),
            option_class=_flat(args.option_class),
            option_type=_flat(args.option_type),
            malformed=args.malformed,
            invert=args.invert,
        )
    except ValueError as exc:
        usage_error(args, str(exc))


# -- tcpdump's habits ---------------------------------------------------------------------
def positive_int(text: str) -> int:
    """A count: an integer >= 1."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % value)
    return value


def add_count_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--count", type=positive_int, metavar="N", help="stop after N packets (N >= 1)")


def add_numeric_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--numeric", action="store_true", help="print port numbers, not service names (as tcpdump -n)"
    )


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no summary on standard error: only the results",
    )


_TIME_HELP = (
    "-t: no time; -tt: seconds since the epoch; -ttt: delta since the previous "
    "packet; -tttt: date, time and zone; -ttttt: delta since the first packet. "
    "Default: HH:MM:SS.ffffff (as tcpdump)"
)


def add_time_options(parser: argparse.ArgumentParser) -> None:
    """tcpdump's ``-t`` family and ``--utc``."""
    parser.add_argument("-t", dest="time_mode", action="count", default=0, help=_TIME_HELP)
    parser.add_argument("--utc", action="store_true", help="times in UTC (default: local time, as tcpdump)")


class TimeFormat:
    """Formats packet times as tcpdump's ``-t`` family does.

    ``mode`` 0: ``HH:MM:SS.ffffff``; 1: none; 2: epoch; 3: delta since the
    previous packet; 4: date, time and zone; 5: delta since the first packet.
    A packet without a time (pcapng simple packet block) shows ``-``.
    """

    def __init__(self, mode: int = 0, utc: bool = False) -> None:
        if not 0 <= mode <= 5:
            raise ValueError("-t may be given at most 5 times (-ttttt)")
        self.mode = mode
        self.utc = utc
        self.first: Optional[int] = None
        self.prev: Optional[int] = None
        self._minute: Optional[Tuple[int, str]] = None

        #: the formatter of this mode (``__call__`` without one indirection)
        self.format: Callable[[Optional[int]], str] = {
            0: self._clock_time,
            1: self._none,
            2: self._epoch,
            3: self._delta_prev,
            4: self._clock_time,
            5: self._delta_first,
        }[mode]

    def __call__(self, ts_ns: Optional[int]) -> str:
        """The time column for a packet at TS_NS nanoseconds (None: no time)."""
        return self.format(ts_ns)

    @staticmethod
    def _none(_ts_ns: Optional[int]) -> str:
        return ""

    @staticmethod
    def _epoch(ts_ns: Optional[int]) -> str:
        if ts_ns is None:
            return "-"
        return "%d.%06d" % divmod(ts_ns // 1000, 1000000)

    def _delta_prev(self, ts_ns: Optional[int]) -> str:
        if ts_ns is None:
            return "-"
        prev, self.prev = self.prev, ts_ns
        return _delta(ts_ns - (ts_ns if prev is None else prev))

    def _delta_first(self, ts_ns: Optional[int]) -> str:
        if ts_ns is None:
            return "-"
        if self.first is None:
            self.first = ts_ns
        return _delta(ts_ns - self.first)

    def _clock_time(self, ts_ns: Optional[int]) -> str:
        if ts_ns is None:
            return "-"
        sec, usec = divmod(ts_ns // 1000, 1000000)
        cached = self._minute
        if cached is not None and 0 <= sec - cached[0] < 60:
            return cached[1] % (sec - cached[0], usec)
        return self._clock(sec, usec)

    def _clock(self, sec: int, usec: int) -> str:
        """HH:MM:SS.ffffff (mode 0) or YYYY-MM-DD HH:MM:SS.ffffff ZONE (mode 4)."""
        minute = sec - sec % 60
        if self._minute is None or self._minute[0] != minute:  # one strftime a minute
            try:
                when = (
                    datetime.datetime.fromtimestamp(minute, datetime.timezone.utc)
                    if self.utc
                    else datetime.datetime.fromtimestamp(minute).astimezone()
                )
            except (OverflowError, OSError, ValueError):
                return "%d.%06d" % (sec, usec)
            fmt = "%Y-%m-%d %H:%M:" if self.mode == 4 else "%H:%M:"
            zone = (" " + ("UTC" if self.utc else when.strftime("%Z"))) if self.mode == 4 else ""
            self._minute = (minute, when.strftime(fmt) + "%02d.%06d" + zone)
        return self._minute[1] % (sec - minute, usec)


def _delta(ns: int) -> str:
    sign = "-" if ns < 0 else ""
    sec, usec = divmod(abs(ns) // 1000, 1000000)
    minutes, s = divmod(sec, 60)
    hours, m = divmod(minutes, 60)
    return "%s%02d:%02d:%02d.%06d" % (sign, hours, m, s, usec)


def time_format(args: argparse.Namespace) -> TimeFormat:
    """The :class:`TimeFormat` the ``-t`` family and ``--utc`` ask for (exit 2 past -ttttt)."""
    try:
        return TimeFormat(int(getattr(args, "time_mode", 0) or 0), bool(getattr(args, "utc", False)))
    except ValueError as exc:
        usage_error(args, str(exc))


# -- files ---------------------------------------------------------------------------------
def add_input(parser: argparse.ArgumentParser, help_text: str, optional: bool = False) -> None:
    """Positional IN and its alias ``-r FILE`` (``-`` is standard input)."""
    parser.add_argument("input", metavar="IN", nargs="?", help=help_text)
    parser.add_argument(
        "-r", dest="read_file", metavar="FILE", help="read FILE (the same as the positional IN)"
    )
    parser.set_defaults(_input_optional=optional)


def input_path(args: argparse.Namespace) -> Optional[str]:
    """IN or ``-r FILE`` (exit 2 if both, or neither where IN is required)."""
    pos, opt = getattr(args, "input", None), getattr(args, "read_file", None)
    if pos is not None and opt is not None:
        usage_error(args, "give IN or -r FILE, not both (%s, %s)" % (pos, opt))
    path = pos if pos is not None else opt
    if path is None and not getattr(args, "_input_optional", False):
        usage_error(args, "no input: give IN or -r FILE (- reads standard input)")
    return path


def add_output(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Positional OUT and its alias ``-w FILE`` (``-`` is standard output)."""
    parser.add_argument("output", metavar="OUT", nargs="?", help=help_text)
    parser.add_argument(
        "-w", dest="write_file", metavar="FILE", help="write FILE (the same as the positional OUT)"
    )


def output_path(args: argparse.Namespace) -> str:
    """OUT or ``-w FILE`` (exit 2 if both or neither)."""
    pos, opt = getattr(args, "output", None), getattr(args, "write_file", None)
    if pos is not None and opt is not None:
        usage_error(args, "give OUT or -w FILE, not both (%s, %s)" % (pos, opt))
    path = pos if pos is not None else opt
    if path is None:
        usage_error(args, "no output: give OUT or -w FILE (- writes standard output)")
    return path


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-F",
        dest="out_format",
        choices=FORMATS,
        metavar="pcap|pcapng",
        help="output format (default: by OUT's name, .pcap or .pcapng, "
        "then the input's); a .gz name is gzip-compressed",
    )


class OutputFormat(NamedTuple):
    format: Optional[str]  # "pcap", "pcapng", or None: the input's
    gzip: bool


def output_format(args: argparse.Namespace, path: Optional[str] = None) -> OutputFormat:
    """What to write: ``-F`` first, then the output name's suffix (``.gz`` = gzip)."""
    name = (
        path if path is not None else getattr(args, "output", None) or getattr(args, "write_file", None) or ""
    )
    base, gz = (name[:-3], True) if name.lower().endswith(".gz") else (name, False)
    chosen = getattr(args, "out_format", None)
    if chosen is None:
        suffix = os.path.splitext(base)[1].lower().lstrip(".")
        chosen = {"pcap": "pcap", "cap": "pcap", "pcapng": "pcapng", "ntar": "pcapng"}.get(suffix)
    return OutputFormat(chosen, gz)
