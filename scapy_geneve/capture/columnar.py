"""Captures as Apache Arrow record batches: the columnar scan.

``scan_batches(path)`` yields one :class:`pyarrow.RecordBatch` per chunk the
reader takes from the file, built straight from the vectorised batch columns
(:func:`~scapy_geneve.capture.scan.analyse_batch`): no Python object per
packet.  The rows are the packets, the columns what :class:`ScanRecord`
says about them (same names, same values; a test proves it field by field),
plus the Geneve option data, the inner TCP flags and the source file:

=============== ============================================ ==========================
column          type                                         null when
=============== ============================================ ==========================
number          int64 (1-based packet number in the file)
offset          int64 (file offset of the record or block)
timestamp       timestamp[ns, UTC]                           no timestamp (pcapng SPB)
caplen, wirelen uint32
linktype        uint32
interface       uint32 (pcapng interface ID; 0 for pcap)
vlans           list<uint16> (outer 802.1Q/802.1ad VLAN IDs)
outer_ip        uint8 (4 or 6)                               not IP
outer_src/dst   string                                       not IP
outer_proto     uint8 (IP protocol / IPv6 next header)       not IP
outer_sport/dport uint16                                     no UDP/TCP header
kind            dictionary<int8, string>: registry names     no tunnel
vni             uint64: VNI, VSID, STT context, L2TPv3       no identifier
                session ID
flow_id         uint8 (NVGRE FlowID)                         not NVGRE
oam             bool (Geneve O bit, VXLAN-GPE O bit)         not Geneve/GPE
critical        bool (Geneve C bit)                          not Geneve
proto           uint16 (Geneve Protocol Type, GPE Next       not Geneve/GPE (or no P)
                Protocol)
stt_offset      uint16 (STT segment offset)                  not STT
control         bool (L2TPv3 control message)                not L2TPv3
options         list<struct<class: uint16, type: uint8,      (empty list: no options)
                critical: bool, length: uint8 (4-byte
                words), data: binary>>
inner_ethertype uint16                                       no inner frame read
inner_src/dst   string                                       inner frame not IP
inner_proto     uint8                                        inner frame not IP
inner_sport/dport uint16                                     no inner TCP/UDP/SCTP ports
tcp_flags       uint16 (inner TCP's 12 flag bits)            inner not TCP, or not captured
malformed       bool
reason          string (why it is malformed)                 not malformed
snapped         bool (cut by the capture's snaplen)
skipped         string (why it was not examined)             examined
file            string (the capture the packet came from)
=============== ============================================ ==========================

``columns=`` selects (and orders) columns; the others are not computed.
Option ``data`` holds the option's data bytes as captured (cut where the
capture or the packet ends).  ``to_pandas()`` and ``polars.from_arrow`` read
the batches directly (:func:`scan_table` gathers them in one table).

Needs pyarrow: ``pip install 'scapy-geneve[analytics]'``.
"""

import functools
import os
import socket
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from scapy_geneve.capture.decode import Decoded, decode
from scapy_geneve.capture.formats import NO_TIMESTAMP
from scapy_geneve.capture.pcapio import Batch
from scapy_geneve.capture.scan import ScanRecord, ScanState, analyse_batch
from scapy_geneve.capture import scan_batch
from scapy_geneve.capture.scan_batch import among, words
from scapy_geneve.capture.scan_io import batches
from scapy_geneve.registry import DEFAULT_PORTS, KIND_MAX, Kind, Ports, records

__all__ = ["BATCH_BYTES", "COLUMNS", "KIND_NAMES", "require_pyarrow", "schema", "scan_batches", "scan_table"]

PathLike = Union[str, "os.PathLike[str]"]

#: Kind names in kind-code order: the ``kind`` column's dictionary (code 1 is index 0).
KIND_NAMES: Tuple[str, ...] = tuple(rec.name for rec in records())

#: Bytes of capture per record batch: 16 MiB (about 25,000 packets of 650 bytes).  Four
#: times the scan's chunk: the per-column work is per batch, and fewer, longer batches
#: cost less of it (measured: the every-column scan of a 1M-packet file 1.35x faster than
#: at 4 MiB); memory stays bounded by one batch.
BATCH_BYTES = 16 * 1024 * 1024

_IPPROTO_TCP = 6
_ETH_P_IP, _ETH_P_IPV6 = 0x0800, 0x86DD


def require_pyarrow() -> Any:
    """The pyarrow module, or ImportError naming the extra that installs it."""
    try:
        import pyarrow
    except ImportError:
        raise ImportError(
            "the columnar scan needs pyarrow: pip install "
            "'scapy-geneve[analytics]' (pyarrow, duckdb, dask[distributed], "
            "pandas)"
        ) from None
    return pyarrow


def _numpy() -> Any:
    import numpy

    return numpy


# -- the per-batch context ------------------------------------------------------------------
class _Frame:
    """One analysed batch and what the column builders share."""

    __slots__ = (
        "np",
        "pa",
        "batch",
        "res",
        "det",
        "n",
        "B",
        "fallback",
        "records",
        "plain",
        "path",
        "cache",
        "decoding",
        "decoded_rows",
    )

    def __init__(self, batch: Batch, res: Any, path: str, decoding: Optional[Dict[str, Any]] = None) -> None:
        self.np = np = _numpy()
        self.pa = require_pyarrow()
        self.batch = batch
        self.res = res
        self.det: Dict[str, Any] = res.detail
        self.n: int = res.n
        self.B = np.frombuffer(batch.buf, dtype=np.uint8)
        self.records: Dict[int, ScanRecord] = self.det["records"]
        self.fallback: List[int] = sorted(self.records)
        self.plain = self.det["ok"]
        self.path = path
        self.cache: Dict[str, Any] = {}
        self.decoding = decoding or {}  # ports, l2tp_cookie, l2tp_l2ss
        self.decoded_rows: Dict[int, Decoded] = {}

    def g8(self, pos: Any) -> Any:
        return self.B.take(pos, mode="clip").astype(self.np.int64)

    def gather(self, pos: Any, width: int) -> Any:
        """(len(pos), width) bytes starting at each of POS (inside the buffer), in one
        fancy index over a sliding-window view of the buffer."""
        if not len(pos):
            return self.np.zeros((0, width), self.np.uint8)
        windows = self.np.lib.stride_tricks.sliding_window_view(self.B, width)
        return windows[pos]

    def g16(self, pos: Any) -> Any:
        return (self.g8(pos) << 8) | self.g8(pos + 1)

    def ends(self) -> Any:
        """Where each packet's captured bytes end in the buffer."""
        if "ends" not in self.cache:
            self.cache["ends"] = self.data_off() + self.res.caplen
        return self.cache["ends"]

    def data_off(self) -> Any:
        if "data_off" not in self.cache:
            np, batch = self.np, self.batch
            if not batch.has_fields:  # classic pcap: data follows each 16-byte header
                off = np.frombuffer(batch.starts, dtype=np.int64) + 16 if self.n else np.zeros(0, np.int64)
            else:
                off = np.frombuffer(batch.fields[0], dtype=np.int64) if self.n else np.zeros(0, np.int64)
            self.cache["data_off"] = off
        return self.cache["data_off"]

    def frame(self, i: int) -> bytes:
        d = int(self.data_off()[i])
        return bytes(self.batch.buf[d : d + int(self.res.caplen[i])])

    def decoded(self, i: int) -> Decoded:
        """The wire decoder's offsets for fallback row I (what its record does not keep)."""
        dec = self.decoded_rows.get(i)
        if dec is None:
            dec = self.decoded_rows[i] = decode(
                self.frame(i), int(self.res.linktype[i]), wirelen=int(self.res.wirelen[i]), **self.decoding
            )
        return dec

    def column(self, values: Any, valid: Any, attr: str, pa_type: Any) -> Any:
        """VALUES where VALID on the plain rows, the record's ATTR on the fallback rows."""
        if self.fallback:
            values, valid = values.copy(), valid.copy()
            for i in self.fallback:
                value = getattr(self.records[i], attr)
                valid[i] = value is not None
                values[i] = value if value is not None else 0
        return _arrow(self, values, pa_type, valid)


def _arrow(f: _Frame, values: Any, pa_type: Any, valid: Any = None) -> Any:
    """The Arrow array of numpy VALUES as PA_TYPE (a fixed-width type), null where not
    VALID (None: nowhere), built on numpy buffers: ``pa.array(values, mask=)`` converts
    and range-checks each value, several times slower (the values here are in range by
    construction: bytes, 16- and 32-bit header fields).  An array that does not own its
    memory (a view of the reader's reused buffers) is copied first."""
    np, pa = f.np, f.pa
    n = len(values)
    if pa.types.is_boolean(pa_type):
        data = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    else:
        data = np.ascontiguousarray(values, dtype=pa_type.to_pandas_dtype())
        if not data.flags.owndata:
            data = data.copy()
    bitmap, nulls = _validity(f, valid, n)
    return pa.Array.from_buffers(pa_type, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


def _validity(f: _Frame, valid: Any, n: int) -> Tuple[Any, int]:
    """(Arrow validity bitmap or None, null count) of the N items where VALID (None: all)."""
    nulls = 0 if valid is None else n - int(f.np.count_nonzero(valid))
    return (f.pa.py_buffer(f.np.packbits(valid, bitorder="little")) if nulls else None), nulls


# -- addresses --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _octet_table() -> Tuple[Any, Any, Any]:
    """Each byte value's dotted-quad text as 4 bytes (digits, '.', zero padding) and
    which of those bytes to keep with the dot and without (the last octet)."""
    np = _numpy()
    text = [str(v).encode() for v in range(256)]
    dotted = np.zeros((256, 4), np.uint8)
    for v, digits in enumerate(text):
        dotted[v, : len(digits) + 1] = list(digits + b".")
    length = np.array([len(t) for t in text])
    width = np.arange(4)[None, :]
    return dotted.view("<u4")[:, 0].copy(), width < (length + 1)[:, None], width < length[:, None]


def _ipv4_text(np: Any, raw: Any) -> Tuple[Any, Any]:
    """Dotted-quad text of the (k, 4) address bytes RAW: (utf-8 bytes, offsets)."""
    words, with_dot, last = _octet_table()
    raw = raw.astype(np.intp)
    keep = np.empty((len(raw), 4, 4), bool)
    keep[:, :3] = with_dot[raw[:, :3]]
    keep[:, 3] = last[raw[:, 3]]
    keep = keep.reshape(len(raw), 16)
    offsets = np.zeros(len(raw) + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return words[raw].view(np.uint8).reshape(-1)[keep.reshape(-1)], offsets


def _distinct(pa: Any, values: Any) -> Tuple[Any, Any]:
    """(distinct values, each value's index among them): a hash table (Arrow's), not a sort."""
    encoded = pa.array(values).dictionary_encode()
    return encoded.dictionary.to_numpy(zero_copy_only=False), encoded.indices.to_numpy(zero_copy_only=False)


def _address_pair(f: _Frame, where: str) -> Tuple[Any, Any]:
    """The (src, dst) string columns of the outer or inner IP header, the records'
    values on the fallback rows; built once per batch (the dst column reuses it).
    Formatted in C where ``_batch.c`` is built (:func:`_address_text`), else by
    :func:`_address_dictionary`, its reference."""
    if where not in f.cache:
        rows = _outer_rows(f) if where == "outer" else _inner_rows(f)
        compiled = scan_batch.COMPILED_PASS
        if compiled is not None:
            f.cache[where] = tuple(_address_text(f, compiled, rows, side, where) for side in ("src", "dst"))
        else:
            f.cache[where] = _address_dictionary(f, rows, where)
    return f.cache[where]


#: (IPv4, IPv6) offsets of the source and destination addresses in the IP header
_ADDRESS_AT = {"src": (12, 8), "dst": (16, 24)}


def _address_text(f: _Frame, compiled: Any, rows: Tuple[Any, Any, Any], side: str, where: str) -> Any:
    """One address column, each address formatted in C straight into the column's
    buffers, the records' values patched in on the fallback rows."""
    np, pa = f.np, f.pa
    rows4, rows6, at = rows
    pos, width = np.full(f.n, -1, np.int64), np.zeros(f.n, np.uint8)
    for rows_v, off, size in ((rows4, _ADDRESS_AT[side][0], 4), (rows6, _ADDRESS_AT[side][1], 16)):
        pos[rows_v], width[rows_v] = at[rows_v] + off, size
    offsets, chars = compiled.addresses(f.batch.buf, pos, width)
    bitmap, nulls = _validity(f, width != 0, f.n)
    column = pa.Array.from_buffers(
        pa.string(), f.n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(chars)], null_count=nulls
    )
    patch = {i: getattr(f.records[i], "%s_%s" % (where, side)) for i in f.fallback}
    patch = {i: word for i, word in patch.items() if word is not None}
    if not patch:
        return column
    import pyarrow.compute as pc

    mask = np.zeros(f.n, bool)
    mask[list(patch)] = True
    return pc.replace_with_mask(
        column, pa.array(mask), pa.array([patch[i] for i in sorted(patch)], pa.string())
    )


def _address_dictionary(f: _Frame, rows: Tuple[Any, Any, Any], where: str) -> Tuple[Any, Any]:
    """Both address columns read in one gather, each distinct address of the two
    formatted once (numpy and Arrow's hash table): the reference of :func:`_address_text`."""
    np, pa = f.np, f.pa
    rows4, rows6, at = rows
    index = np.full((2, f.n), -1, np.int32)  # row 0: src, row 1: dst
    texts = pa.array([], pa.string())
    if len(rows4):
        # each address as the 4 bytes in wire order (a little-endian word), src then dst
        k = len(rows4)
        u64 = words(np, f.batch.buf, "<u8")
        pair = u64[at[rows4] + 12].view("<u4").reshape(k, 2)  # one gather: src, dst
        both = np.empty(2 * k, "<u4")
        both[:k], both[k:] = pair[:, 0], pair[:, 1]
        unique, inverse = _distinct(pa, both)
        index[0, rows4], index[1, rows4] = inverse[:k], inverse[k:]
        chars, offsets = _ipv4_text(np, unique.astype("<u4").view(np.uint8).reshape(-1, 4))
        buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(chars)]
        texts = pa.Array.from_buffers(pa.string(), len(unique), buffers)
    extra: List[str] = []
    if len(rows6):
        pair = f.gather(at[rows6] + 8, 32)  # (k, 32): src, dst
        raw = np.ascontiguousarray(np.concatenate([pair[:, :16], pair[:, 16:]]))
        unique, inverse = _distinct(
            pa, pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw)])
        )
        index[:, rows6] = inverse.reshape(2, -1) + len(texts)
        extra.extend(socket.inet_ntop(socket.AF_INET6, bytes(v)) for v in unique)
    _fallback_addresses(f, where, index, len(texts), extra)
    dictionary = pa.concat_arrays([texts, pa.array(extra, pa.string())]) if extra else texts
    src, dst = (
        pa.DictionaryArray.from_arrays(_arrow(f, side, pa.int32(), side >= 0), dictionary).dictionary_decode()
        for side in index
    )
    return src, dst


def _fallback_addresses(f: _Frame, where: str, index: Any, first: int, words: List[str]) -> None:
    """The fallback rows' addresses from their records: WORDS (the dictionary's
    entries from index FIRST on) gains those it does not have."""
    known: Dict[str, int] = {}
    for side, name in enumerate(("src", "dst")):
        for i in f.fallback:
            word = getattr(f.records[i], "%s_%s" % (where, name))
            if word is None:
                index[side, i] = -1
                continue
            if word not in known:
                known[word] = first + len(words)
                words.append(word)
            index[side, i] = known[word]


def _outer_rows(f: _Frame) -> Tuple[Any, Any, Any]:
    """Plain rows with an outer IPv4 / IPv6 header, and the header positions."""
    np = f.np
    outer = f.res.outer_ip
    plain = f.plain
    rows4 = np.nonzero(plain & (outer == 4))[0]
    rows6 = np.nonzero(plain & (outer == 6))[0]
    return rows4, rows6, f.det["l3"]


def _inner_rows(f: _Frame) -> Tuple[Any, Any, Any]:
    np, det = f.np, f.det
    ipos, iver = det["inner_pos"], det["inner_version"]
    have = f.plain & (ipos >= 0)
    return np.nonzero(have & (iver == 4))[0], np.nonzero(have & (iver == 6))[0], ipos


# -- simple columns ---------------------------------------------------------------------------
def _col_number(f: _Frame) -> Any:
    return _arrow(f, f.np.arange(f.batch.first, f.batch.first + f.n, dtype=f.np.int64), f.pa.int64())


def _col_offset(f: _Frame) -> Any:
    starts = f.np.frombuffer(f.batch.starts, dtype=f.np.int64) if f.n else f.np.zeros(0, f.np.int64)
    return _arrow(f, starts + f.batch.base, f.pa.int64())


def _col_timestamp(f: _Frame) -> Any:
    ts = f.res.ts_ns
    return f.pa.Array.from_buffers(
        f.pa.timestamp("ns", tz="UTC"), f.n, _arrow(f, ts, f.pa.int64(), ts != NO_TIMESTAMP).buffers()
    )


def _col_interface(f: _Frame) -> Any:
    if not f.batch.has_fields:
        return _arrow(f, f.np.zeros(f.n, f.np.uint32), f.pa.uint32())
    return _arrow(
        f,
        f.np.frombuffer(f.batch.fields[6], dtype=f.np.int64) if f.n else f.np.zeros(0, f.np.int64),
        f.pa.uint32(),
    )


def _col_vlans(f: _Frame) -> Any:
    np, det, pa = f.np, f.det, f.pa
    counts = np.where(f.plain, det["vlan_n"], 0)
    width = max([2] + [len(f.records[i].vlans) for i in f.fallback])
    table = np.zeros((f.n, width), np.int64)
    table[:, 0], table[:, 1] = det["vlan1"], det["vlan2"]
    for i in f.fallback:
        vlans = f.records[i].vlans
        counts[i] = len(vlans)
        table[i, : len(vlans)] = vlans
    values = table[np.arange(width)[None, :] < counts[:, None]]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.uint16()))


def _col_outer_ip(f: _Frame) -> Any:
    outer = f.res.outer_ip
    return _arrow(f, outer, f.pa.uint8(), outer != 0)


def _col_outer_proto(f: _Frame) -> Any:
    res, np = f.res, f.np
    l3 = f.det["l3"]
    proto = f.g8(np.where(res.outer_ip == 6, l3 + 6, l3 + 9))
    return f.column(proto, f.plain & (res.outer_ip != 0), "outer_proto", f.pa.uint8())


def _col_port(f: _Frame, name: str) -> Any:
    values = f.det[name]
    return f.column(values, f.plain & (values >= 0), "outer_" + name, f.pa.uint16())


def _col_kind(f: _Frame) -> Any:
    """Registry names as a dictionary column; codes map through the registry as it is
    now, so a kind added with ``registry.register`` reads by its name too."""
    pa, np, kind = f.pa, f.np, f.res.kind
    known = sorted(records(), key=lambda rec: int(rec.kind))
    position = np.full(KIND_MAX + 1, -1, np.int8)
    position[[int(rec.kind) for rec in known]] = np.arange(len(known), dtype=np.int8)
    indices = _arrow(f, position[kind.astype(np.intp)], pa.int8(), kind != 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array([rec.name for rec in known], pa.string()))


def _col_vni(f: _Frame) -> Any:
    return _arrow(f, f.res.vni, f.pa.uint64(), f.res.has_vni)


def _col_by_kind(
    f: _Frame, attr: str, values: Any, codes: Sequence[int], pa_type: Any, extra: Any = None
) -> Any:
    """A tunnel field that only kinds CODES have (and, if given, where EXTRA)."""
    valid = among(f.np, f.res.kind, codes) & f.plain
    if extra is not None:
        valid &= extra
    return f.column(values, valid, attr, pa_type)


def _col_flow_id(f: _Frame) -> Any:
    return _col_by_kind(f, "flow_id", f.det["flow"], (Kind.NVGRE,), f.pa.uint8())


def _col_oam(f: _Frame) -> Any:
    return _col_by_kind(f, "oam", f.res.oam, (Kind.GENEVE, Kind.VXLAN_GPE), f.pa.bool_())


def _col_critical(f: _Frame) -> Any:
    return _col_by_kind(f, "critical", f.res.crit, (Kind.GENEVE,), f.pa.bool_())


def _col_proto(f: _Frame) -> Any:
    proto = f.det["proto"]
    return _col_by_kind(f, "proto", proto, (Kind.GENEVE, Kind.VXLAN_GPE), f.pa.uint16(), proto >= 0)


def _col_control(f: _Frame) -> Any:
    return _col_by_kind(f, "control", f.det["control"] == 1, (Kind.L2TPV3,), f.pa.bool_())


def _col_stt_offset(f: _Frame) -> Any:
    # STT packets always take the per-packet path (context IDs flow between segments)
    return f.column(f.np.zeros(f.n, f.np.int64), f.np.zeros(f.n, bool), "stt_offset", f.pa.uint16())


def _col_inner_ethertype(f: _Frame) -> Any:
    values = f.det["inner_ethertype"]
    return f.column(values, f.plain & (values >= 0), "inner_ethertype", f.pa.uint16())


def _col_inner_proto(f: _Frame) -> Any:
    det = f.det
    return f.column(det["inner_proto"], f.plain & (det["inner_pos"] >= 0), "inner_proto", f.pa.uint8())


def _col_inner_port(f: _Frame, name: str) -> Any:
    values = f.det["inner_" + name]
    return f.column(values, f.plain & (values >= 0), "inner_" + name, f.pa.uint16())


def _col_malformed(f: _Frame) -> Any:
    return _arrow(f, f.res.malformed, f.pa.bool_())


def _col_snapped(f: _Frame) -> Any:
    return _arrow(f, f.res.snapped, f.pa.bool_())


def _sparse_strings(f: _Frame, values: Dict[int, str]) -> Any:
    """A string column that is null except at VALUES' rows."""
    np, pa = f.np, f.pa
    index = np.full(f.n, -1, np.int32)
    words: Dict[str, int] = {}
    for i, word in values.items():
        index[i] = words.setdefault(word, len(words))
    indices = pa.array(index, pa.int32(), mask=index < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(words), pa.string())).dictionary_decode()


def _col_reason(f: _Frame) -> Any:
    return _sparse_strings(f, f.res.reasons)


def _col_skipped(f: _Frame) -> Any:
    return _sparse_strings(f, {i: rec.skipped for i, rec in f.records.items() if rec.skipped is not None})


def _col_file(f: _Frame) -> Any:
    """The same string on every row: its bytes repeated, offsets in steps of its length."""
    np, pa = f.np, f.pa
    word = f.path.encode()
    if len(word) * f.n >= 1 << 31:  # past string's 32-bit offsets: Arrow's error
        indices = pa.array(np.zeros(f.n, np.int32))
        return pa.DictionaryArray.from_arrays(indices, pa.array([f.path], pa.string())).dictionary_decode()
    offsets = np.arange(f.n + 1, dtype=np.int32) * np.int32(len(word))
    return pa.Array.from_buffers(pa.string(), f.n, [None, pa.py_buffer(offsets), pa.py_buffer(word * f.n)])


# -- inner TCP flags ----------------------------------------------------------------------------
def _col_tcp_flags(f: _Frame) -> Any:
    """The inner TCP header's 12 flag bits (as the wire decoder and tshark's tcp.flags),
    where the whole 20-byte header was captured."""
    np, det = f.np, f.det
    l4 = det["inner_l4"]  # the analysis' inner L4 offsets and IP ends (its Total / Payload Length)
    tcp = f.plain & (det["inner_proto"] == _IPPROTO_TCP) & (det["inner_sport"] >= 0)
    valid = tcp & (l4 + 20 <= np.minimum(f.ends(), det["inner_ipend"]))
    flags = np.zeros(f.n, np.int64)
    rows = np.nonzero(valid)[0]
    flags[rows] = f.g16(l4[rows] + 12) & 0x0FFF
    for i in f.fallback:
        inner = f.decoded(i).inner_l4
        valid[i] = inner is not None and inner.proto == _IPPROTO_TCP and inner.flags >= 0
        flags[i] = inner.flags if valid[i] and inner is not None else 0
    return _arrow(f, flags, f.pa.uint16(), valid)


# -- Geneve options -----------------------------------------------------------------------------
def _col_options(f: _Frame) -> Any:
    np, pa, res = f.np, f.pa, f.res
    pkt, cls, typ, length = res.opt_pkt, res.opt_class, res.opt_type, res.opt_len
    start = np.empty(len(pkt), np.int64)
    plain = f.det["opt_pos"]  # the analysis' options come first, the decoder's after them
    start[: len(plain)] = plain
    _fallback_option_positions(f, pkt, start, len(plain))
    copied = f.det.get("opt_data")
    if copied is None:  # the numpy stages: every option's data gathered from the buffer
        order = np.argsort(pkt, kind="stable")  # wire order within each packet
        pkt, cls, typ, length, start = (column[order] for column in (pkt, cls, typ, length, start))
        data = _option_data(f, pkt, start, length)
    else:  # the compiled pass copied the data of the options it read, packet by packet
        data = _copied_option_data(f, copied, pkt, start, length, len(plain))
        if len(pkt) > 1 and not (pkt[1:] >= pkt[:-1]).all():  # the decoder's options come last
            order = np.argsort(pkt, kind="stable")
            pkt, cls, typ, length = (column[order] for column in (pkt, cls, typ, length))
            data = data.take(pa.array(order))
    counts = np.bincount(pkt, minlength=f.n) if len(pkt) else np.zeros(f.n, np.int64)
    offsets = np.zeros(f.n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    items = pa.StructArray.from_arrays(
        [
            _arrow(f, cls, pa.uint16()),
            _arrow(f, typ, pa.uint8()),
            _arrow(f, (typ & 0x80) != 0, pa.bool_()),
            _arrow(f, length, pa.uint8()),
            data,
        ],
        fields=list(OPTION_TYPE(pa)),
    )
    return pa.ListArray.from_arrays(_arrow(f, offsets, pa.int32()), items)


def _fallback_option_positions(f: _Frame, pkt: Any, start: Any, first: int) -> None:
    """START from row FIRST on: the decoder's options, where its offsets put them (-1
    where a fresh decode finds fewer options than the batch's)."""
    rows: Dict[int, List[int]] = {}
    for row, i in enumerate(pkt[first:].tolist(), first):
        rows.setdefault(i, []).append(row)
    for i, mine in rows.items():
        found = [o.offset for o in f.decoded(i).options]
        frame_pos = int(f.data_off()[i])
        for row, at in zip(mine, found + [-1] * (len(mine) - len(found))):
            start[row] = at + frame_pos if at >= 0 else -1


def _copied_option_data(f: _Frame, copied: bytes, pkt: Any, start: Any, length: Any, plain: int) -> Any:
    """The options' data as a binary array in their order here: the compiled pass' copy
    for the first PLAIN ones (whole: inside their packet), gathered for the decoder's."""
    np, pa = f.np, f.pa
    offsets = np.zeros(plain + 1, np.int32)
    np.cumsum(length[:plain] * 4, out=offsets[1:])
    data = pa.Array.from_buffers(pa.binary(), plain, [None, pa.py_buffer(offsets), pa.py_buffer(copied)])
    if plain == len(pkt):
        return data
    return pa.concat_arrays([data, _option_data(f, pkt[plain:], start[plain:], length[plain:])])


def _option_data(f: _Frame, pkt: Any, start: Any, length: Any) -> Any:
    """Each option's data bytes as captured (cut at the end of the packet)."""
    np, pa = f.np, f.pa
    lo = start + 4
    hi = np.minimum(lo + length * 4, f.ends()[pkt] if len(pkt) else lo)
    size = np.where(start >= 0, np.maximum(hi - lo, 0), 0)
    offsets = np.zeros(len(size) + 1, np.int64)
    np.cumsum(size, out=offsets[1:])
    total = int(offsets[-1])
    if not total:
        values = np.zeros(0, np.uint8)
    elif not (size & 3).any():  # whole 4-byte words (nothing cut): gather words
        at = np.repeat(lo - offsets[:-1], size >> 2) + np.arange(0, total, 4)
        values = words(np, f.batch.buf, "<u4")[at]
    else:
        values = f.B.take(np.repeat(lo - offsets[:-1], size) + np.arange(total))
    return pa.Array.from_buffers(
        pa.binary(), len(size), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(values)]
    )


def OPTION_TYPE(pa: Any) -> Any:
    """The struct type of one Geneve option."""
    return pa.struct(
        [
            ("class", pa.uint16()),
            ("type", pa.uint8()),
            ("critical", pa.bool_()),
            ("length", pa.uint8()),
            ("data", pa.binary()),
        ]
    )


# -- the columns, in schema order -----------------------------------------------------------
def _plain(name: str, attr: str, pa_type: str) -> Callable[[_Frame], Any]:
    def build(f: _Frame) -> Any:
        return _arrow(f, getattr(f.res, attr), getattr(f.pa, pa_type)())

    build.__name__ = "_col_" + name
    return build


_BUILDERS: Dict[str, Callable[[_Frame], Any]] = {
    "number": _col_number,
    "offset": _col_offset,
    "timestamp": _col_timestamp,
    "caplen": _plain("caplen", "caplen", "uint32"),
    "wirelen": _plain("wirelen", "wirelen", "uint32"),
    "linktype": _plain("linktype", "linktype", "uint32"),
    "interface": _col_interface,
    "vlans": _col_vlans,
    "outer_ip": _col_outer_ip,
    "outer_src": lambda f: _address_pair(f, "outer")[0],
    "outer_dst": lambda f: _address_pair(f, "outer")[1],
    "outer_proto": _col_outer_proto,
    "outer_sport": lambda f: _col_port(f, "sport"),
    "outer_dport": lambda f: _col_port(f, "dport"),
    "kind": _col_kind,
    "vni": _col_vni,
    "flow_id": _col_flow_id,
    "oam": _col_oam,
    "critical": _col_critical,
    "proto": _col_proto,
    "stt_offset": _col_stt_offset,
    "control": _col_control,
    "options": _col_options,
    "inner_ethertype": _col_inner_ethertype,
    "inner_src": lambda f: _address_pair(f, "inner")[0],
    "inner_dst": lambda f: _address_pair(f, "inner")[1],
    "inner_proto": _col_inner_proto,
    "inner_sport": lambda f: _col_inner_port(f, "sport"),
    "inner_dport": lambda f: _col_inner_port(f, "dport"),
    "tcp_flags": _col_tcp_flags,
    "malformed": _col_malformed,
    "reason": _col_reason,
    "snapped": _col_snapped,
    "skipped": _col_skipped,
    "file": _col_file,
}

#: Every column, in schema order.
COLUMNS: Tuple[str, ...] = tuple(_BUILDERS)


def _types(pa: Any) -> Dict[str, Any]:
    u8, u16, u32, u64, b = pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(), pa.bool_()
    s = pa.string()
    return {
        "number": pa.int64(),
        "offset": pa.int64(),
        "timestamp": pa.timestamp("ns", tz="UTC"),
        "caplen": u32,
        "wirelen": u32,
        "linktype": u32,
        "interface": u32,
        "vlans": pa.list_(u16),
        "outer_ip": u8,
        "outer_src": s,
        "outer_dst": s,
        "outer_proto": u8,
        "outer_sport": u16,
        "outer_dport": u16,
        "kind": pa.dictionary(pa.int8(), s),
        "vni": u64,
        "flow_id": u8,
        "oam": b,
        "critical": b,
        "proto": u16,
        "stt_offset": u16,
        "control": b,
        "options": pa.list_(OPTION_TYPE(pa)),
        "inner_ethertype": u16,
        "inner_src": s,
        "inner_dst": s,
        "inner_proto": u8,
        "inner_sport": u16,
        "inner_dport": u16,
        "tcp_flags": u16,
        "malformed": b,
        "reason": s,
        "snapped": b,
        "skipped": s,
        "file": s,
    }


def _selected(columns: Optional[Iterable[str]]) -> List[str]:
    chosen = list(COLUMNS) if columns is None else list(columns)
    unknown = [name for name in chosen if name not in _BUILDERS]
    if unknown:
        raise ValueError("unknown column %s (columns: %s)" % (", ".join(unknown), ", ".join(COLUMNS)))
    return chosen


def schema(columns: Optional[Iterable[str]] = None) -> Any:
    """The :class:`pyarrow.Schema` of :func:`scan_batches` for these columns."""
    pa = require_pyarrow()
    types = _types(pa)
    return pa.schema([(name, types[name]) for name in _selected(columns)])


def scan_batches(
    path: PathLike,
    columns: Optional[Iterable[str]] = None,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    source: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Iterator[Any]:
    """Yield a :class:`pyarrow.RecordBatch` per chunk of the capture at PATH.

    ``columns`` selects columns (default: :data:`COLUMNS`); ``ports``,
    ``l2tp_cookie`` and ``l2tp_l2ss`` mean what they mean to
    :func:`~scapy_geneve.capture.scan.scan`; ``source`` is what the ``file``
    column says (default: PATH); ``progress(bytes_read, packets_read)`` is
    called after each chunk.  Streams: memory does not grow with the file.  A
    damaged file raises :class:`~scapy_geneve.errors.CaptureError` after every
    batch before the damage has been yielded; a pcap of a link type the scan
    cannot read is an error at its first packet, as in ``scan()``.
    """
    pa = require_pyarrow()
    chosen = _selected(columns)
    out_schema = schema(chosen)
    state = ScanState()
    name = str(path) if source is None else source
    decoding = {"ports": ports, "l2tp_cookie": l2tp_cookie, "l2tp_l2ss": l2tp_l2ss}
    for batch in batches(path, progress, chunk_size=BATCH_BYTES):
        res = analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state, detail=True)
        frame = _Frame(batch, res, name, decoding)
        arrays = [_BUILDERS[column](frame) for column in chosen]
        yield pa.RecordBatch.from_arrays(arrays, schema=out_schema)
        del frame, res, batch


def scan_table(
    paths: Union[PathLike, Sequence[PathLike]], columns: Optional[Iterable[str]] = None, **kwargs: Any
) -> Any:
    """Every packet of one or more captures as one :class:`pyarrow.Table`
    (``.to_pandas()``, ``polars.from_arrow(...)``); keyword arguments as
    :func:`scan_batches`."""
    pa = require_pyarrow()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    chosen = _selected(columns)
    batches = [b for path in paths for b in scan_batches(path, chosen, **kwargs)]
    return pa.Table.from_batches(batches, schema=schema(chosen))
