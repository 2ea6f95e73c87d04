"""The compiled stages (capture/_batch.c) equal the numpy stages (capture/scan_batch.py).

analyse_batch() runs one compiled pass over a batch where the extension is
built, and the numpy stages otherwise; the numpy stages are the reference.
For any batch, both must leave:

- the same packets to the wire decoder (``detail["ok"]``), hence the same
  final columns (kind, identifier, C and O bits, inner key, outer IP version,
  malformed, reasons) and the same fallback records;
- the same options, with the same positions (the compiled pass lists them
  packet by packet; the numpy stages option index by option index);
- on the packets parsed here, the same detail columns and outer IP offsets
  (the ones the columnar scan and scan() read; on the decoder's packets
  neither path's detail values are read).

Hypothesis draws packets of every kind (tests/test_scan_fuzz.py's strategy:
VLAN stacks, options, wrong lengths, BIG TCP, cuts, padding), random bytes
under every link type the stages know, extra and registered ports, L2TPv3
cookies, and the three modes (stats, stats with STT in order, detail).
"""

import io
import os
import socket
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scapy_geneve import registry
from scapy_geneve.capture import scan_batch
from scapy_geneve.capture.columnar import scan_table
from scapy_geneve.capture.decode import DecodeState
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    CaptureReader,
    PcapngWriter,
    PcapWriter,
)
from scapy_geneve.capture.scan_batch import DETAIL_COLUMNS, BatchResult, analyse_batch
from scapy_geneve.errors import CaptureError
from scapy_geneve.registry import DEFAULT_PORTS, Ports

from .conftest import CORPUS, ROOT
from .test_registry import TOY, TOY_IP, TOY_TCP
from .test_scan_fuzz import generated_frames

compiled = scan_batch.COMPILED_PASS
pytestmark = pytest.mark.skipif(
    compiled is None and not os.environ.get("CI"),
    reason="the compiled stages are not built here (no C compiler at install): the numpy stages run",
)

SAME = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: link types the stages read (Ethernet-like and raw IP), and two they hand to the decoder
LINKTYPES = [
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    12,
    14,
    0,  # BSD loopback
    147,  # a link type nobody reads here
]
#: a kind on a UDP port, one on a TCP port, one straight over IP: the decoder reads them
TOYS = (TOY, TOY_TCP, TOY_IP)


def test_ci_builds_the_compiled_stages() -> None:
    """In CI the extension must be there: otherwise these tests compare numpy with itself."""
    assert compiled is not None, "scapy_geneve/capture/_batch.c was not built (setup.py, optional extension)"


# -- the comparison ------------------------------------------------------------------------------
@contextmanager
def numpy_stages() -> Iterator[None]:
    with mock.patch.object(scan_batch, "COMPILED_PASS", None):
        yield


def _options(res: BatchResult) -> List[Tuple[int, ...]]:
    columns = [res.opt_pkt, res.opt_class, res.opt_type, res.opt_len]
    plain = len(res.detail["opt_pos"]) if res.detail else None
    rows = [tuple(int(c[k]) for c in columns) for k in range(len(res.opt_pkt))]
    if plain is not None:  # the positions of the options parsed here
        rows = [row + (int(res.detail["opt_pos"][k]) if k < plain else -1,) for k, row in enumerate(rows)]
    return sorted(rows)


def _columns(res: BatchResult) -> Dict[str, Any]:
    """What analyse_batch hands on, with the detail columns of the packets parsed here."""
    out: Dict[str, Any] = {
        name: getattr(res, name).tolist()
        for name in ("kind", "vni", "has_vni", "crit", "oam", "inner", "outer_ip", "malformed", "snapped")
    }
    out.update(n=res.n, fallback=res.fallback, reasons=res.reasons, options=_options(res))
    if res.detail is not None:
        ok = res.detail["ok"]
        out["ok"] = ok.tolist()
        for name in ("l3",) + DETAIL_COLUMNS + ("inner_l4", "inner_ipend"):
            out[name] = np.where(ok, res.detail[name], -2).tolist()
        out["records"] = {i: rec.as_dict() for i, rec in res.detail["records"].items()}
    return out


def assert_same(
    batch: Any, mode: str, ports: Ports = DEFAULT_PORTS, cookie: int = 0, l2ss: bool = False
) -> None:
    """Both stages on BATCH in MODE (stats, ordered: STT in order, detail) agree."""
    results = []
    for numpy_only in (False, True):
        state = DecodeState() if mode == "ordered" else None
        with numpy_stages() if numpy_only else _nothing():
            res = analyse_batch(batch, ports, cookie, l2ss, state, detail=mode == "detail")
        results.append(_columns(res))
    c_cols, np_cols = results
    for name in np_cols:
        assert c_cols[name] == np_cols[name], "column %s differs (%s mode)" % (name, mode)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _batches(data: bytes, path: Path) -> List[Any]:
    path.write_bytes(data)
    with CaptureReader(path) as reader:
        return list(reader.batches())


def _pcap(frames: List[Tuple[bytes, int]], linktype: int) -> bytes:
    out = io.BytesIO()
    writer = PcapWriter(out, linktype)
    for k, (frame, wirelen) in enumerate(frames):
        writer.write(frame, k, max(wirelen, len(frame)))
    return out.getvalue()


def _pcapng(frames: List[Tuple[bytes, int, int]]) -> bytes:
    """FRAMES (data, wire length, interface) in a pcapng with one interface per link type."""
    out = io.BytesIO()
    writer = PcapngWriter(out)
    for linktype in LINKTYPES:
        writer.add_interface(linktype)
    for k, (frame, wirelen, iface) in enumerate(frames):
        writer.write(frame, k, iface, wirelen)
    return out.getvalue()


# -- generated packets ----------------------------------------------------------------------------
def _link_header(linktype: int, frame: bytes) -> bytes:
    """FRAME (Ethernet) under LINKTYPE: the same packet as the link type carries it."""
    ethertype, ip = frame[12:14], frame[14:]
    if linktype == LINKTYPE_LINUX_SLL:
        return bytes(14) + frame[12:]  # packet type, ARPHRD, address length and address; protocol
    if linktype == LINKTYPE_LINUX_SLL2:
        return ethertype + bytes(18) + ip  # protocol first
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14):
        return ip
    return frame


@SAME
@given(
    frames=st.lists(generated_frames(), min_size=1, max_size=12),
    linktype=st.sampled_from(LINKTYPES),
    mode=st.sampled_from(["stats", "ordered", "detail"]),
)
def test_same_columns_on_generated_packets(
    tmp_path_factory: pytest.TempPathFactory, frames: List[Tuple[bytes, int]], linktype: int, mode: str
) -> None:
    """Every kind, valid or damaged, under each link type: the same columns and fallbacks."""
    frames = [(_link_header(linktype, f), w - len(f) + len(_link_header(linktype, f))) for f, w in frames]
    path = tmp_path_factory.mktemp("c") / "x.pcap"
    for batch in _batches(_pcap(frames, linktype), path):
        assert_same(batch, mode)


@SAME
@given(
    frames=st.lists(
        st.tuples(st.binary(max_size=120), st.sampled_from(range(len(LINKTYPES)))), min_size=1, max_size=16
    ),
    mode=st.sampled_from(["stats", "ordered", "detail"]),
)
def test_same_columns_on_random_bytes_of_mixed_link_types(
    tmp_path_factory: pytest.TempPathFactory, frames: List[Tuple[bytes, int]], mode: str
) -> None:
    """Any bytes, in a pcapng whose packets come from interfaces of every link type."""
    path = tmp_path_factory.mktemp("c") / "x.pcapng"
    for batch in _batches(_pcapng([(data, len(data), iface) for data, iface in frames]), path):
        assert_same(batch, mode)


@st.composite
def mutated(draw: Any) -> bytes:
    """A generated packet with a few of its bytes overwritten (headers that almost parse),
    or cut anywhere (each bounds check at its edge)."""
    frame, _ = draw(generated_frames())
    data = bytearray(frame)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@SAME
@given(
    frames=st.lists(mutated(), min_size=1, max_size=12),
    mode=st.sampled_from(["stats", "ordered", "detail"]),
    cookie=st.sampled_from([0, 4, 8]),
    l2ss=st.booleans(),
    extra=st.sampled_from([{}, {"geneve": [4789]}, {"vxlan": [6081, 1701]}, {"gpe": [6081], "stt": [80]}]),
)
def test_same_columns_with_other_ports_cookies_and_registered_kinds(
    tmp_path_factory: pytest.TempPathFactory,
    frames: List[bytes],
    mode: str,
    cookie: int,
    l2ss: bool,
    extra: Dict[str, List[int]],
) -> None:
    """Mutated packets with extra ports (one port claimed by two kinds: the registry's
    order decides), L2TPv3 cookies and sublayers, and kinds registered on a UDP port, a
    TCP port and an IP protocol (the decoder reads those)."""
    path = tmp_path_factory.mktemp("c") / "x.pcap"
    batches = _batches(_pcap([(f, len(f)) for f in frames], LINKTYPE_ETHERNET), path)
    for toy in TOYS:
        registry.register(toy)
    try:
        ports = DEFAULT_PORTS.extended(**extra)
        for batch in batches:
            assert_same(batch, mode, ports, cookie, l2ss)
    finally:
        for toy in TOYS:
            registry.unregister(toy.name)


def _toy_frames() -> List[bytes]:
    """Packets on the toy kinds' port and protocol, for the test above's examples."""
    eth_ip = bytes(12) + b"\x08\x00"

    def ipv4(proto: int, body: bytes) -> bytes:
        return (
            eth_ip
            + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0, bytes(4), bytes(4))
            + body
        )

    udp = struct.pack("!HHHH", 1, 9999, 16, 0) + bytes(8)
    tcp = struct.pack("!HHIIBBHHH", 1, 9998, 0, 0, 0x50, 0, 0, 0, 0) + bytes(4)
    return [ipv4(17, udp), ipv4(6, tcp), ipv4(253, bytes(8))]


example(frames=_toy_frames(), mode="detail", cookie=0, l2ss=False, extra={})(
    test_same_columns_with_other_ports_cookies_and_registered_kinds
)


# -- the columnar scan: address text --------------------------------------------------------------
def _tables(path: Path) -> Tuple[Any, Any]:
    """scan_table(PATH) with the compiled pass (and its address text), and with numpy's."""
    c_table = scan_table(path)
    with numpy_stages():
        return c_table, scan_table(path)


@SAME
@given(frames=st.lists(st.one_of(generated_frames(), mutated().map(lambda f: (f, len(f)))), max_size=12))
def test_same_arrow_tables(tmp_path_factory: pytest.TempPathFactory, frames: List[Tuple[bytes, int]]) -> None:
    """Every column of the columnar scan, the addresses formatted in C included (IPv4 and
    IPv6, outer and inner, the decoder's rows patched in), equals the numpy build."""
    path = tmp_path_factory.mktemp("c") / "x.pcap"
    path.write_bytes(_pcap(frames, LINKTYPE_ETHERNET))
    c_table, np_table = _tables(path)
    assert c_table.equals(np_table), c_table.to_pylist()


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8), cut=st.integers(0, 3))
def test_address_text_is_inet_ntop(raw: List[bytes], cut: int) -> None:
    """Each IPv4 and IPv6 address the compiled pass formats is socket.inet_ntop's text."""
    assert compiled is not None
    buf = b"".join(raw)
    pos = np.arange(0, len(buf), 16, dtype=np.int64) + np.int64(cut)
    width = np.array([4 if k % 2 else 16 for k in range(len(raw))], np.uint8)
    width[-1] = 0 if cut else width[-1]  # a null; the last 16 bytes would run past the buffer
    offsets, chars = compiled.addresses(buf, pos, width)
    ends = np.frombuffer(offsets, np.int32)
    got = [chars[ends[k] : ends[k + 1]].decode() for k in range(len(raw))]
    family = {4: socket.AF_INET, 16: socket.AF_INET6}
    want = [
        socket.inet_ntop(family[w], buf[p : p + w]) if w else "" for p, w in zip(pos.tolist(), width.tolist())
    ]
    assert got == want


def test_address_text_refuses_to_read_past_the_buffer() -> None:
    assert compiled is not None
    with pytest.raises(ValueError, match="item 1 reads past the buffer"):
        compiled.addresses(bytes(20), np.array([0, 8], np.int64), np.array([4, 16], np.uint8))
    for far in (2**63 - 2, -(2**63)):  # an offset whose end overflows is past the buffer too
        with pytest.raises(ValueError, match="item 0 reads past the buffer"):
            compiled.addresses(bytes(40), np.array([far], np.int64), np.array([16], np.uint8))


def test_ports_no_packet_has_match_nothing(tmp_path: Path) -> None:
    """A port outside 0-65535 (Ports.extended does not check) and a registered transport
    other than UDP and TCP match no packet on either path."""
    frame = (
        bytes(12)
        + b"\x08\x00"
        + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 44, 0, 0, 64, 17, 0, bytes(4), bytes(4))
        + struct.pack("!HHHH", 1, 65535, 24, 0)
        + bytes.fromhex("08000000 abcdef00")
        + bytes(8)
    )
    odd = DEFAULT_PORTS.extended(vxlan=[-1, 65536])._replace(others=frozenset({("sctp", 9, "x")}))
    for batch in _batches(_pcap([(frame, len(frame))], LINKTYPE_ETHERNET), tmp_path / "x.pcap"):
        assert_same(batch, "detail", odd)
        assert analyse_batch(batch, odd).kind.tolist() == [0]


def test_the_compiled_pass_checks_its_arguments() -> None:
    """Wrong arguments are TypeError or ValueError naming them, never a write out of place."""
    assert compiled is not None
    n = 3
    good = dict(det=np.zeros((16, n), np.int64), links=scan_batch._c_links())
    outputs = [
        np.zeros(n, t) for t in (bool, np.int8, np.uint64, bool, bool, bool, np.int64, np.int8, np.int64)
    ]
    outputs[6] = np.zeros(n - 1, np.int64)
    bad = [
        (dict(outputs=tuple(outputs)), ValueError, "an output has 16 bytes, needs 24"),
        (dict(det=np.zeros((16, n + 1), np.int64)), ValueError, "det has 512 bytes, needs 384"),
        (dict(links=[[1, 14, 12]]), TypeError, "each link is a tuple"),
        (
            dict(data_off=np.zeros(2 * n + 1, np.int32)[1:].view(np.int64)),
            ValueError,
            "data_off is not an aligned",
        ),
    ]
    for change, error, says in bad:
        with pytest.raises(error, match=says):
            compiled.analyse(*_analyse_args(n, **dict(good, **change)))
    compiled.analyse(*_analyse_args(n, **good))


def _analyse_args(
    n: int, det: Any = None, links: Any = None, data_off: Any = None, outputs: Any = None
) -> Tuple[Any, ...]:
    """analyse()'s arguments for N packets of a 64-byte buffer, with these changed."""
    arrays = [
        np.zeros(n, t) for t in (bool, np.int8, np.uint64, bool, bool, bool, np.int64, np.int8, np.int64)
    ]
    return (
        b"\x00" * 64,
        np.zeros(n, np.int64) if data_off is None else data_off,
        np.zeros(n, np.int64),
        np.ones(n, np.int64),
        scan_batch._c_links() if links is None else links,
        scan_batch._TPIDS,
        scan_batch._c_constants(),
        scan_batch._port_table(np, DEFAULT_PORTS),
        scan_batch._proto_table(np),
        0,
        False,
        tuple(arrays) if outputs is None else outputs,
        det,
    )


# -- real captures ---------------------------------------------------------------------------------
def _captures() -> List[Path]:
    found = sorted((ROOT / "pcaps").glob("*.pcap"))
    if CORPUS.is_dir():
        found += sorted(p for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng"))
    return found


@pytest.mark.parametrize("mode", ["stats", "ordered", "detail"])
def test_same_columns_on_every_bundled_and_corpus_capture(mode: str) -> None:
    """Our pcaps and tcpdump's (whatever their link types), read in chunks as the scan
    does; in detail mode the whole Arrow tables too."""
    seen = 0
    for path in _captures():
        try:
            with CaptureReader(path) as reader:
                for batch in reader.batches():
                    assert_same(batch, mode)
                    seen += 1
            if mode == "detail":
                c_table, np_table = _tables(path)
                assert c_table.equals(np_table), path
        except CaptureError:  # a capture the readers refuse is no comparison
            continue
    assert seen >= len(list((ROOT / "pcaps").glob("*.pcap")))
