"""Counters over captures: what ``scapy-geneve stats`` prints.

:class:`ScanStats` is fed whole batches (:meth:`ScanStats.add_result`, the
vectorised path) or single records (:meth:`ScanStats.add_record`); both give
identical counts.  :meth:`ScanStats.merge` adds another's counts: merging is
associative and commutative, so per-file or per-chunk stats computed in other
processes merge into exactly what one pass gives (tests/test_scan_fuzz.py).

A batch is reduced with sorts, not Python loops: the options as one int64 per
(key, packet) pair (``(key << bits) | packet``), so a key's packets and bytes
count each packet once, and the identifiers as one word per packet (kind,
identifier and wire length packed when they fit); the per-key sums wait in a
:class:`_Tally` and become dicts only when read.
"""

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from scapy_geneve.capture.decode import DecodeState
from scapy_geneve.capture.pcapio import LINKTYPE_NAMES, CaptureReader
from scapy_geneve.capture.scan_batch import BatchResult, analyse_batch, numpy
from scapy_geneve.capture.scan_record import (
    NO_TS,
    ScanRecord,
    inner_key,
    inner_protocol_name,
    kind_name,
    linktype_name,
)
from scapy_geneve.consts import option_class_name
from scapy_geneve import registry
from scapy_geneve.capture.scan_io import batches
from scapy_geneve.registry import DEFAULT_PORTS, Kind, Ports

__all__ = ["ScanStats", "compute_stats"]

_NKINDS = max(int(k) for k in Kind) + 1
_WIDE_ID = 1 << 56  # identifiers below this share one sort key with their kind code
_NARROW_ID, _NARROW_LEN = 1 << 32, 1 << 24  # below both: kind, identifier and length in one word
_JOIN = ", "


def _union(a: str, b: str) -> str:
    """Two ", "-joined name sets as one (sorted; "" is the empty set)."""
    names = {part for part in a.split(_JOIN) + b.split(_JOIN) if part}
    return _JOIN.join(sorted(names))


def _bump(table: Dict[Any, int], key: Any, count: int = 1) -> None:
    table[key] = table.get(key, 0) + count


def _add_to(table: Dict[Any, List[int]], key: Any, values: List[int]) -> None:
    entry = table.get(key)
    if entry is None:
        table[key] = list(values)
    else:
        for k, value in enumerate(values):
            entry[k] += value


def _add_rows(table: Dict[Any, List[int]], keys: Iterable[Any], *columns: List[int]) -> None:
    """Add row k of COLUMNS to TABLE[keys[k]] (a list of counts), for every k: the batch
    path's one call per batch, not per key."""
    get = table.get
    if len(columns) == 2:
        for key, a, b in zip(keys, *columns):
            entry = get(key)
            if entry is None:
                table[key] = [a, b]
            else:
                entry[0] += a
                entry[1] += b
        return
    for key, a, b, c in zip(keys, *columns):
        entry = get(key)
        if entry is None:
            table[key] = [a, b, c]
        else:
            entry[0] += a
            entry[1] += b
            entry[2] += c


def _kind_vni(code: int, vni: int) -> Tuple[int, int]:
    return code, vni


def _class_type(_zero: int, value: int) -> Tuple[int, int]:
    return value >> 8, value & 0xFF


def _second(_zero: int, value: int) -> int:
    return value


class _Tally:
    """{key: [counts]} fed by whole batches, folded into the dict when it is read.

    A batch adds numpy columns (the key in two parts, then the counts); reading
    sorts what is pending once, sums per key and updates the dict: a key seen
    in every batch costs one dict update per read, not one per batch.
    """

    FOLD_ROWS = 1 << 20  # fold before the pending rows pass this (bounded memory)

    def __init__(self, make_key: Callable[[int, int], Any]) -> None:
        self.table: Dict[Any, List[int]] = {}
        self.parts: List[Tuple[Any, ...]] = []
        self.rows = 0
        self.make_key = make_key

    def add(self, hi: Any, lo: Any, *columns: Any) -> None:
        self.parts.append((hi, lo) + columns)
        self.rows += len(lo)
        if self.rows > self.FOLD_ROWS:
            self.fold()

    def fold(self) -> Dict[Any, List[int]]:
        if not self.parts:
            return self.table
        np = numpy()
        cols = [np.concatenate(col) for col in zip(*self.parts)]
        self.parts, self.rows = [], 0
        order = np.lexsort((cols[1], cols[0]))
        hi, lo = cols[0][order], cols[1][order]
        new = np.ones(len(lo), bool)
        new[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        starts = np.flatnonzero(new)
        sums = [np.add.reduceat(col[order], starts).tolist() for col in cols[2:]]
        keys = map(self.make_key, hi[starts].tolist(), lo[starts].tolist())
        _add_rows(self.table, keys, *sums)
        return self.table

    def __getstate__(self) -> Dict[str, Any]:
        return {"table": self.fold(), "make_key": self.make_key}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["make_key"])  # type: ignore[misc]
        self.table = state["table"]


def _largest_first(table: Dict[Any, Any], count: Callable[[Any], int]) -> List[Tuple[Any, Any]]:
    return sorted(table.items(), key=lambda kv: (-count(kv[1]), kv[0]))


class ScanStats:
    """Counters over one capture (or several, merged)."""

    # How merge() combines each attribute: sums, {key: count} tables, {key: [counts]} tables.
    _SUMS = (
        "packets",
        "bytes",
        "captured",
        "c_bit",
        "oam",
        "critical_options",
        "crit_without_c",
        "malformed",
        "snapped",
    )
    _COUNTS = ("linktypes", "outer", "no_vni", "inner", "reasons", "skipped")
    _LISTS = ("kinds", "vnis", "options", "option_classes")

    def __init__(self, path: str = "") -> None:
        self.path = path  # the file(s): ", "-joined once merged
        self.format = ""
        self.packets = 0
        self.bytes = 0  # wire bytes
        self.captured = 0  # captured bytes
        self.first_ns: Optional[int] = None
        self.last_ns: Optional[int] = None
        self.linktypes: Dict[int, int] = {}
        self.outer: Dict[int, int] = {}  # 0, 4 or 6 -> packets
        self.kinds: Dict[int, List[int]] = {}  # kind code -> [packets, bytes]
        self._vnis = _Tally(_kind_vni)  # vnis: (kind code, vni) -> [packets, bytes]
        self.no_vni: Dict[int, int] = {}  # kind code -> packets without one
        self._options = _Tally(_class_type)  # options: (class, type) -> [occurrences,
        # packets carrying it, their wire bytes]
        self._option_classes = _Tally(_second)  # option_classes: class -> [packets, bytes]
        self.c_bit = 0  # Geneve packets with C set
        self.oam = 0  # Geneve/GPE packets with O set
        self.critical_options = 0  # options whose type has 0x80
        self.crit_without_c = 0  # packets with a critical option but C clear
        self.inner: Dict[int, int] = {}
        self.malformed = 0
        self.reasons: Dict[str, int] = {}
        self.snapped = 0
        self.skipped: Dict[int, int] = {}  # link type -> packets not examined (pcapng)
        self.first_skipped: Optional[int] = None  # number of the first one
        self.error: Optional[str] = None  # set when the file is damaged part-way

    @property
    def vnis(self) -> Dict[Tuple[int, int], List[int]]:
        """(kind code, identifier) -> [packets, wire bytes]."""
        return self._vnis.fold()

    @property
    def options(self) -> Dict[Tuple[int, int], List[int]]:
        """(class, type) -> [occurrences, packets carrying it, their wire bytes]."""
        return self._options.fold()

    @property
    def option_classes(self) -> Dict[int, List[int]]:
        """Option class -> [packets carrying it, their wire bytes]."""
        return self._option_classes.fold()

    # -- merging -------------------------------------------------------------------------
    def merge(self, other: "ScanStats") -> "ScanStats":
        """Add OTHER's counts to these; returns self.

        Associative and commutative: stats of chunks or files merged in any
        grouping and order equal one pass over them all.  Paths, formats and
        errors become sorted ", "-joined sets; ``first_skipped`` the smallest.
        """
        for name in self._SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in self._COUNTS:
            table = getattr(self, name)
            for key, count in getattr(other, name).items():
                _bump(table, key, count)
        for name in self._LISTS:
            table = getattr(self, name)
            for key, values in getattr(other, name).items():
                _add_to(table, key, values)
        self._times(other.first_ns, other.last_ns)
        if other.first_skipped is not None:
            self.first_skipped = (
                other.first_skipped
                if self.first_skipped is None
                else min(self.first_skipped, other.first_skipped)
            )
        self.path = _union(self.path, other.path)
        self.format = _union(self.format, other.format)
        error = _union(self.error or "", other.error or "")
        self.error = error or None
        return self

    # -- feeding, one record ----------------------------------------------------------------
    def _times(self, lo: Optional[int], hi: Optional[int]) -> None:
        if lo is None or hi is None:
            return
        self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
        self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)

    def add_record(self, rec: ScanRecord) -> None:
        """Count one :class:`ScanRecord`."""
        self.packets += 1
        self.bytes += rec.wirelen
        self.captured += rec.caplen
        if rec.ts_ns is not None:
            self._times(rec.ts_ns, rec.ts_ns)
        _bump(self.linktypes, rec.linktype)
        _bump(self.outer, rec.outer_ip or 0)
        self._record_kind(rec)
        self.c_bit += bool(rec.critical)
        self.oam += bool(rec.oam)
        self._record_options(rec)
        _bump(self.inner, inner_key(rec))
        if rec.malformed:
            self.malformed += 1
            _bump(self.reasons, rec.reason or "malformed")
        self.snapped += rec.snapped
        if rec.skipped:
            _bump(self.skipped, rec.linktype)
            if self.first_skipped is None:
                self.first_skipped = rec.number

    def _record_kind(self, rec: ScanRecord) -> None:
        code = 0 if rec.kind is None else int(registry.get(rec.kind).kind)
        _add_to(self.kinds, code, [1, rec.wirelen])
        if not code:
            return
        if rec.vni is None:
            _bump(self.no_vni, code)
        else:
            _add_to(self.vnis, (code, rec.vni), [1, rec.wirelen])

    def _record_options(self, rec: ScanRecord) -> None:
        seen = set()
        has_crit = False
        for opt in rec.options:
            key = (opt.classid, opt.type)
            _add_to(self.options, key, [1, 0, 0] if key in seen else [1, 1, rec.wirelen])
            seen.add(key)
            if opt.critical:
                self.critical_options += 1
                has_crit = True
        for cls in {opt.classid for opt in rec.options}:
            _add_to(self.option_classes, cls, [1, rec.wirelen])
        if has_crit and not rec.critical:
            self.crit_without_c += 1

    # -- feeding, one batch ------------------------------------------------------------------
    def add_result(self, res: BatchResult) -> None:
        """Count one batch analysed by :func:`~scapy_geneve.capture.scan_batch.analyse_batch`."""
        if not res.n:
            return
        np = numpy()
        self.packets += res.n
        self.bytes += int(res.wirelen.sum())
        self.captured += int(res.caplen.sum())
        first: Optional[int] = int(res.ts_ns.min())
        last: Optional[int] = int(res.ts_ns.max())
        if first == NO_TS:  # packets without a timestamp (pcapng Simple Packet Blocks)
            ts = res.ts_ns[res.ts_ns != NO_TS]
            first, last = (int(ts.min()), int(ts.max())) if len(ts) else (None, None)
        self._times(first, last)
        self._batch_linktypes(np, res)
        for value, count in enumerate(np.bincount(res.outer_ip, minlength=7).tolist()):
            if count:
                _bump(self.outer, value, count)
        self._batch_kinds(np, res)
        self.c_bit += int(res.crit.sum())
        self.oam += int(res.oam.sum())
        if len(res.opt_pkt):
            self._batch_options(np, res)
        self._batch_inner(np, res)
        self._batch_outcome(np, res)

    def _batch_linktypes(self, np: Any, res: BatchResult) -> None:
        first = int(res.linktype[0])
        if (res.linktype == first).all():
            _bump(self.linktypes, first, res.n)
            return
        for value, count in zip(*np.unique(res.linktype, return_counts=True)):
            _bump(self.linktypes, int(value), int(count))

    def _batch_kinds(self, np: Any, res: BatchResult) -> None:
        packets = np.bincount(res.kind, minlength=_NKINDS).tolist()
        nbytes = np.bincount(res.kind, weights=res.wirelen, minlength=_NKINDS).tolist()
        for code, count in enumerate(packets):  # registered kinds' codes too (up to registry.KIND_MAX)
            if count:
                _add_to(self.kinds, code, [count, int(nbytes[code])])
        without = np.bincount(res.kind[(res.kind != 0) & ~res.has_vni], minlength=_NKINDS).tolist()
        for code, count in enumerate(without):
            if count:
                _bump(self.no_vni, code, count)
        if sum(packets[1:]) > sum(without):  # reduced per batch, folded when read
            self._batch_identifiers(np, res)

    def _batch_identifiers(self, np: Any, res: BatchResult) -> None:
        """Packets and bytes per (kind, identifier): one sort of the batch's identifiers."""
        sel = (res.kind != 0) & res.has_vni
        code, vni, wirelen = res.kind[sel].astype(np.uint64), res.vni[sel], res.wirelen[sel]
        u64 = np.uint64
        if int(vni.max()) < _NARROW_ID and int(wirelen.max()) < _NARROW_LEN:
            # kind (8 bits), identifier (32) and wire length (24) in one word: a sort, no argsort
            packed = np.sort((code << u64(56)) | (vni << u64(24)) | wirelen.astype(u64))
            key, nbytes = packed >> u64(24), (packed & u64(_NARROW_LEN - 1)).astype(np.int64)
            self._vni_groups(np, key, nbytes, 32)
        elif int(vni.max()) < _WIDE_ID:
            key = (code << u64(56)) | vni
            order = np.argsort(key)
            self._vni_groups(np, key[order], wirelen[order], 56)
        else:  # STT's 64-bit context IDs: one kind at a time
            for one in np.unique(code).tolist():
                mine = np.flatnonzero(code == one)
                order = mine[np.argsort(vni[mine])]
                self._vni_groups(np, vni[order], wirelen[order], 0, one)

    def _vni_groups(self, np: Any, key: Any, nbytes: Any, bits: int, code: int = 0) -> None:
        """Add the runs of sorted KEY ((kind << BITS) | identifier; with BITS 0, CODE's
        identifiers) with the sum of NBYTES over each."""
        starts = _starts(np, key)
        values = key[starts]
        if bits:
            hi, lo = values >> np.uint64(bits), values & np.uint64((1 << bits) - 1)
        else:
            hi, lo = np.full(len(values), code, np.uint64), values
        counts = np.diff(np.append(starts, len(key)))
        self._vnis.add(hi.astype(np.int64), lo, counts, np.add.reduceat(nbytes, starts))

    def _batch_options(self, np: Any, res: BatchResult) -> None:
        """Occurrences, packets and bytes per option (class, type) and per class."""
        pkt = res.opt_pkt
        shift = max(1, int(res.n).bit_length())  # (key << shift) | packet: one sortable int64
        for tally, key in (
            (self._options, (res.opt_class << 8) | res.opt_type),
            (self._option_classes, res.opt_class),
        ):
            pairs = np.sort((key << shift) | pkt)
            keys = pairs >> shift
            starts = _starts(np, keys)
            first = _starts_mask(np, pairs)  # a key's first occurrence in its packet
            carried = np.where(first, res.wirelen[pairs & ((1 << shift) - 1)], 0)
            columns = [np.add.reduceat(first.astype(np.int64), starts), np.add.reduceat(carried, starts)]
            if tally is self._options:
                columns.insert(0, np.diff(np.append(starts, len(pairs))))
            tally.add(np.zeros(len(starts), np.int64), keys[starts], *columns)
        critical = (res.opt_type & 0x80) != 0
        self.critical_options += int(critical.sum())
        with_crit = np.zeros(res.n, bool)
        with_crit[pkt[critical]] = True
        self.crit_without_c += int((with_crit & ~res.crit).sum())

    def _batch_inner(self, np: Any, res: BatchResult) -> None:
        ip = res.inner < 256  # -1 (none) and IP protocols: one bincount
        counts = np.bincount((res.inner if ip.all() else res.inner[ip]) + 1, minlength=257).tolist()
        for value in np.nonzero(counts)[0].tolist():
            _bump(self.inner, value - 1, counts[value])
        if not ip.all():  # non-IP inner frames: EtherType keys
            for value, count in zip(*np.unique(res.inner[~ip], return_counts=True)):
                _bump(self.inner, int(value), int(count))

    def _batch_outcome(self, np: Any, res: BatchResult) -> None:
        self.malformed += int(res.malformed.sum())
        for reason in res.reasons.values():
            _bump(self.reasons, reason)
        self.snapped += int(res.snapped.sum())
        if res.skipped.any():
            for value, count in zip(*np.unique(res.linktype[res.skipped], return_counts=True)):
                _bump(self.skipped, int(value), int(count))
            if self.first_skipped is None:
                self.first_skipped = res.first + int(np.argmax(res.skipped))

    # -- reporting -----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Everything as plain JSON-ready data (sorted, largest first)."""
        duration = None
        if self.first_ns is not None and self.last_ns is not None:
            duration = (self.last_ns - self.first_ns) / 1e9
        return {
            "file": self.path,
            "format": self.format,
            "packets": self.packets,
            "bytes": self.bytes,
            "captured_bytes": self.captured,
            "first_time": None if self.first_ns is None else self.first_ns / 1e9,
            "last_time": None if self.last_ns is None else self.last_ns / 1e9,
            "duration": duration,
            "linktypes": {
                LINKTYPE_NAMES.get(lt, str(lt)): count for lt, count in sorted(self.linktypes.items())
            },
            "outer": {("IPv%d" % v if v else "non-IP"): count for v, count in sorted(self.outer.items())},
            "encapsulations": {
                (kind_name(code) or "none"): {"packets": v[0], "bytes": v[1]}
                for code, v in sorted(self.kinds.items(), key=lambda kv: -kv[1][0])
            },
            "vnis": [
                {"kind": kind_name(code), "vni": vni, "packets": v[0], "bytes": v[1]}
                for (code, vni), v in _largest_first(self.vnis, lambda v: v[0])
            ],
            "without_identifier": {kind_name(code): count for code, count in sorted(self.no_vni.items())},
            "options": self._options_dict(),
            "option_classes": [
                {"class": cls, "class_name": option_class_name(cls), "packets": v[0], "bytes": v[1]}
                for cls, v in _largest_first(self.option_classes, lambda v: v[0])
            ],
            "critical": {
                "c_bit_packets": self.c_bit,
                "critical_options": self.critical_options,
                "critical_option_without_c_bit": self.crit_without_c,
            },
            "oam_packets": self.oam,
            "inner_protocols": {
                inner_protocol_name(k): v for k, v in _largest_first(self.inner, lambda v: v)
            },
            "malformed": {
                "packets": self.malformed,
                "reasons": dict(_largest_first(self.reasons, lambda v: v)),
            },
            "snapped": self.snapped,
            "skipped": self._skipped_dict(),
            "error": self.error,
        }

    def _options_dict(self) -> List[Dict[str, Any]]:
        return [
            {
                "class": cls,
                "class_name": option_class_name(cls),
                "type": typ,
                "critical": bool(typ & 0x80),
                "count": v[0],
                "packets": v[1],
                "bytes": v[2],
            }
            for (cls, typ), v in _largest_first(self.options, lambda v: v[0])
        ]

    def _skipped_dict(self) -> Dict[str, Any]:
        return {
            "packets": sum(self.skipped.values()),
            "linktypes": {linktype_name(lt): count for lt, count in sorted(self.skipped.items())},
            "first_packet": self.first_skipped,
        }


def _starts_mask(np: Any, values: Any) -> Any:
    """True where sorted VALUES change (and at 0): the first of each run."""
    new = np.empty(len(values), bool)
    new[:1] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    return new


def _starts(np: Any, values: Any) -> Any:
    """Where each run of equal sorted VALUES starts."""
    return np.flatnonzero(_starts_mask(np, values))


def compute_stats(
    path: Union[str, "os.PathLike[str]"],
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
    stats: Optional[ScanStats] = None,
) -> ScanStats:
    """Count packets and bytes per encapsulation, VNI, option, inner protocol.

    Uses the vectorised path.  On a damaged file it raises
    :class:`~scapy_geneve.errors.CaptureError`; pass your own ``stats`` to keep
    what was counted up to the damage.  ``progress(bytes_read, packets_read)``
    is called after each chunk.
    """
    stats = stats if stats is not None else ScanStats(str(path))
    state = DecodeState()

    def opened(reader: CaptureReader) -> None:
        stats.format = reader.format

    for batch in batches(path, progress, opened):
        stats.add_result(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        del batch
    return stats
