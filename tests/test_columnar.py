"""The columnar scan: Arrow record batches equal scan()'s records, field by field.

Every column :func:`scan_batches` shares with :class:`ScanRecord` must hold the
record's value (null where the record says None), for the packets the batch
path reads and for those it hands to the per-packet parser: on pcaps/, on the
tcpdump corpus and on hypothesis-generated captures (valid frames of every
kind, then bytes flipped).  The columns scan() does not have are checked
against tshark (option bytes, inner TCP flags).
"""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from scapy_geneve.capture import columnar
from scapy_geneve.capture.columnar import (
    COLUMNS,
    KIND_NAMES,
    scan_batches,
    scan_table,
    schema,
)
from scapy_geneve.capture.decode import IPPROTO_TCP, decode
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
)
from scapy_geneve.capture.scan import ScanRecord, scan
from scapy_geneve.errors import CaptureError
from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.l2tpv3 import L2TPv3
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.stt import STT
from scapy_geneve.registry import DEFAULT_PORTS, names

pa = pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="SA")
OUTER = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2")
OVN = GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02")
GWLB = GeneveOption(classid=0x0108, type=0x03, data=b"\xca\xfe\xf0\x0d\x01\x02\x03\x04")
#: one frame of every kind, plain and not (IPv6 extension header, 3 VLAN tags)
SEEDS = [
    bytes(f)
    for f in [
        OUTER / UDP(sport=1, dport=6081) / Geneve(vni=5, options=[OVN, GWLB]) / INNER,
        OUTER
        / UDP(sport=1, dport=6081)
        / Geneve(vni=6, proto=0x86DD)
        / IPv6(src="fd00::1", dst="fd00::2")
        / UDP(sport=7, dport=8),
        Ether(**MACS)
        / Dot1Q(vlan=5)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=2, dport=4789)
        / VXLAN(flags=8, vni=7)
        / INNER,
        Ether(**MACS)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrDestOpt()
        / UDP(sport=2, dport=6081)
        / Geneve(vni=12, options=[GWLB])
        / INNER,
        Ether(**MACS)
        / Dot1Q(vlan=1)
        / Dot1Q(vlan=2)
        / Dot1Q(vlan=3)
        / IP(src="192.0.2.9")
        / UDP(sport=2, dport=6081)
        / Geneve(vni=13, options=[OVN])
        / INNER,
        OUTER / UDP(sport=3, dport=4790) / VXLAN(flags=0x0C, NextProtocol=1, vni=8) / INNER[IP],
        OUTER / UDP(sport=3, dport=48879) / VXLAN(flags=0x08, vni=14) / INNER,
        OUTER / NVGRE(vsid=9, flowid=1) / INNER,
        OUTER / TCP(sport=4, dport=7471, seq=(18 + len(INNER)) << 16) / STT(context_id=10) / INNER,
        OUTER / L2TPv3(session_id=11) / INNER,
        OUTER / UDP(sport=9, dport=53) / (b"\x00" * 12),
    ]
]

#: every per-packet scalar scan() records; timestamps, VLANs and options are compared apart
SCALAR = tuple(name for name in ScanRecord.__slots__ if name not in ("ts_ns", "vlans", "options"))


#: the registry's ports (VXLAN on 48879 too), given to both scans
PORTS: Any = DEFAULT_PORTS


def record_row(rec: ScanRecord) -> Dict[str, Any]:
    """What scan() says about one packet, in the columns' terms."""
    row = {name: getattr(rec, name) for name in SCALAR}
    row["timestamp"] = rec.ts_ns
    row["vlans"] = list(rec.vlans)
    row["options"] = [(o.classid, o.type, o.critical, o.length) for o in rec.options]
    return row


def arrow_rows(path: Path) -> List[Dict[str, Any]]:
    """The columnar scan's rows, timestamps as integer ns, options without data."""
    rows: List[Dict[str, Any]] = []
    for batch in scan_batches(path):
        ts = batch.column("timestamp").cast(pa.int64()).to_pylist()
        for row, ns in zip(batch.to_pylist(), ts):
            row["timestamp"] = ns
            row["options"] = [(o["class"], o["type"], o["critical"], o["length"]) for o in row["options"]]
            rows.append(row)
    return rows


def assert_same(path: Path) -> int:
    """The Arrow rows equal scan()'s records (also when both stop at damage)."""
    expected: List[Any] = []
    got: List[Any] = []
    for source, into in (
        (lambda: (record_row(r) for r in scan(path, ports=PORTS)), expected),
        (lambda: iter(arrow_rows(path)), got),
    ):
        try:
            into.extend(source())
        except CaptureError as exc:
            into.append((exc.message, exc.offset, exc.packet))
    assert len(got) == len(expected), path
    for want, row in zip(expected, got):
        if isinstance(want, tuple):
            assert row == want
            continue
        for name, value in want.items():
            assert row[name] == value, "%s packet %s column %s" % (path, want["number"], name)
        assert row["file"] == str(path)
    return len(expected)


def write(path: Path, frames: List[bytes], linktype: int = LINKTYPE_ETHERNET) -> Path:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, linktype, nanosecond=True)
        for i, frame in enumerate(frames):
            writer.write(frame, 1_700_000_000_123_456_789 + i * 1000)
    return path


class TestEqualsScan:
    @pytest.mark.parametrize("path", PROJECT_PCAPS, ids=lambda p: p.name)
    def test_project_pcaps(self, path: Path) -> None:
        assert assert_same(path) > 0

    def test_tcpdump_corpus(self, corpus: Path) -> None:
        files = sorted(corpus.glob("*.pcap")) + sorted(corpus.glob("*.pcapng"))
        assert files
        assert sum(assert_same(path) for path in files) > 100

    def test_every_kind_and_fallback(self, tmp_path: Path) -> None:
        """Plain packets and those the per-packet parser reads (IPv6 extension header,
        three VLAN tags, STT) come out the same."""
        path = write(tmp_path / "seeds.pcap", SEEDS)
        assert assert_same(path) == len(SEEDS)
        table = scan_table(path)
        kinds = set(table.column("kind").to_pylist())
        assert kinds == set(names()) | {None}

    def test_pcapng_interfaces_and_no_timestamp(self, tmp_path: Path) -> None:
        path = tmp_path / "two.pcapng"
        with open(path, "wb") as handle:
            writer = PcapngWriter(handle)
            eth = writer.add_interface(LINKTYPE_ETHERNET, tsresol=9)
            raw = writer.add_interface(LINKTYPE_RAW)
            for i, frame in enumerate(SEEDS):
                writer.write(frame, 1_700_000_000_000_000_001 + i, eth)
                writer.write(frame[14:], 1_700_000_000_000_001_000 + i * 1000, raw)
            writer.write_simple(SEEDS[0])  # no timestamp: a null
        assert assert_same(path) == 2 * len(SEEDS) + 1
        table = scan_table(path, columns=["timestamp", "interface"])
        assert table.column("timestamp").null_count == 1
        assert set(table.column("interface").to_pylist()) == {0, 1}

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        picks=st.lists(
            st.tuples(
                st.sampled_from(range(len(SEEDS))),
                st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
                st.integers(0, 4),
            ),
            min_size=1,
            max_size=25,
        )
    )
    def test_generated_and_mutated(self, tmp_path_factory: pytest.TempPathFactory, picks: List[Any]) -> None:
        """Frames of every kind with bytes flipped and tails cut: the per-packet
        parser's rows (malformed, truncated, odd) equal scan()'s too."""
        frames = mutated(picks)
        path = write(tmp_path_factory.mktemp("gen") / "gen.pcap", frames)
        assert assert_same(path) == len(frames)
        assert_flags_and_option_data(path, frames)


def mutated(picks: List[Any]) -> List[bytes]:
    """The SEEDS frames PICKS names, bytes flipped and tails cut."""
    frames = []
    for index, flips, cut in picks:
        frame = bytearray(SEEDS[index])
        for at, value in flips:
            if at < len(frame):
                frame[at] = value
        frames.append(bytes(frame[: len(frame) - cut * 7]))
    return frames


def assert_flags_and_option_data(path: Path, frames: List[bytes]) -> None:
    """The columns scan() has not (inner TCP flags, option data), from the batch's offsets
    on the plain rows, equal the wire decoder's reading of each of FRAMES (PATH's)."""
    table = scan_table(path, columns=["tcp_flags", "options"])
    for frame, row in zip(frames, table.to_pylist()):
        dec = decode(frame, LINKTYPE_ETHERNET, PORTS)
        inner = dec.inner_l4
        tcp = inner is not None and inner.proto == IPPROTO_TCP and inner.flags >= 0
        assert row["tcp_flags"] == (inner.flags if tcp and inner is not None else None)
        want = [frame[o.offset + 4 : o.offset + 4 + 4 * o.length] for o in dec.options]
        assert [o["data"] for o in row["options"]] == want


class TestColumns:
    def test_schema_and_selection(self, tmp_path: Path) -> None:
        path = write(tmp_path / "seeds.pcap", SEEDS)
        batch = next(scan_batches(path, columns=["vni", "kind", "number"]))
        assert batch.schema.names == ["vni", "kind", "number"]
        assert batch.schema == schema(["vni", "kind", "number"])
        assert str(batch.schema.field("kind").type) == "dictionary<values=string, indices=int8, ordered=0>"
        assert batch.column("kind").dictionary.to_pylist() == list(KIND_NAMES)
        assert scan_table(path).schema.names == list(COLUMNS)
        assert str(schema().field("timestamp").type) == "timestamp[ns, tz=UTC]"
        with pytest.raises(ValueError, match="unknown column vnii"):
            next(scan_batches(path, columns=["vnii"]))

    def test_option_data_and_timestamps(self, tmp_path: Path) -> None:
        path = write(tmp_path / "seeds.pcap", SEEDS)
        table = scan_table(path)
        first = table.slice(0, 1).to_pylist()[0]
        # 0102 80 01 | 00010002            (OVN, critical, 1 word)
        # 0108 03 02 | cafef00d 01020304   (GWLB, 2 words)
        assert first["options"] == [
            {"class": 0x0102, "type": 0x80, "critical": True, "length": 1, "data": bytes.fromhex("00010002")},
            {
                "class": 0x0108,
                "type": 0x03,
                "critical": False,
                "length": 2,
                "data": bytes.fromhex("cafef00d01020304"),
            },
        ]
        assert first["tcp_flags"] == 0x012  # inner SYN+ACK
        assert first["timestamp"].value == 1_700_000_000_123_456_789
        # the IPv6-extension-header packet (per-packet path) has its option data too
        fourth = table.slice(3, 1).to_pylist()[0]
        assert fourth["options"][0]["data"] == bytes.fromhex("cafef00d01020304")
        assert fourth["tcp_flags"] == 0x012
        stt = table.slice(8, 1).to_pylist()[0]  # STT: per-packet path too
        assert stt["kind"] == "stt" and stt["tcp_flags"] == 0x012

    def test_pandas_and_polars(self, tmp_path: Path) -> None:
        polars = pytest.importorskip("polars")
        path = write(tmp_path / "seeds.pcap", SEEDS)
        table = scan_table(path)
        frame = table.to_pandas()
        assert len(frame) == len(SEEDS)
        assert frame.loc[0, "vni"] == 5 and frame.loc[0, "kind"] == "geneve"
        assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
        pl = polars.from_arrow(table)
        assert pl.filter(polars.col("kind") == "nvgre")["vni"].to_list() == [9]

    @settings(max_examples=80, deadline=None)
    @given(data=st.data())
    def test_arrays_from_numpy_buffers_equal_pa_array(self, data: Any) -> None:
        """The columns' fast conversion (numpy buffers, a packed validity bitmap) equals
        ``pa.array(values, type, mask=~valid)``, for every fixed-width column type."""
        numpy = pytest.importorskip("numpy")
        name, low, high = data.draw(
            st.sampled_from(
                [
                    ("bool_", 0, 1),
                    ("int8", -1, 127),
                    ("uint8", 0, 255),
                    ("uint16", 0, 0xFFFF),
                    ("uint32", 0, 0xFFFFFFFF),
                    ("int32", -1, 0x7FFFFFFF),
                    ("int64", -(1 << 63), (1 << 63) - 1),
                    ("uint64", 0, (1 << 64) - 1),
                ]
            )
        )
        pa_type = getattr(pa, name)()
        items = data.draw(st.lists(st.integers(low, high), max_size=80))
        dtype = bool if name == "bool_" else numpy.uint64 if name == "uint64" else numpy.int64
        values = numpy.array(items, dtype=dtype)
        valid = data.draw(st.none() | st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
        mask = None if valid is None else ~numpy.array(valid, dtype=bool)
        frame: Any = SimpleNamespace(np=numpy, pa=pa)
        valid_array = None if valid is None else numpy.array(valid, dtype=bool)
        got = columnar._arrow(frame, values, pa_type, valid_array)
        want = pa.array(values, pa_type, mask=mask)
        got.validate(full=True)
        assert got.type == want.type and got.null_count == want.null_count
        assert got.equals(want)

    def test_kept_record_batches_stay_valid(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Record batches kept while the scan goes on (their arrays built on numpy buffers,
        the reader refilling the buffers nobody holds) equal a fresh scan's."""
        frames = SEEDS * 8
        path = write(tmp_path / "many.pcap", frames)
        monkeypatch.setattr(columnar, "BATCH_BYTES", 1500)  # a chunk: a few packets
        kept = list(scan_batches(path))
        assert len(kept) > 5
        fresh = [rb.to_pylist() for rb in scan_batches(path)]
        assert [rb.to_pylist() for rb in kept] == fresh

    def test_missing_pyarrow_names_the_extra(self, tmp_path: Path) -> None:
        code = (
            "import sys; sys.modules['pyarrow'] = None\n"
            "from scapy_geneve.capture.columnar import scan_batches\n"
            "try:\n    next(scan_batches(%r))\n"
            "except ImportError as exc:\n    print(exc)\n" % str(PROJECT_PCAPS[0])
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "pip install 'scapy-geneve[analytics]'" in out


@pytest.mark.oracle
def test_option_bytes_and_tcp_flags_agree_with_tshark(tshark: str, corpus: Path) -> None:
    """tshark's geneve.option (header and data) and inner tcp.flags, packet by packet."""
    files = [
        ROOT / "pcaps" / "geneve_options.pcap",
        corpus / "geneve.pcap",
        corpus / "gso-ipv4-geneve-ipv4.pcap",
    ]
    checked = 0
    for path in files:
        if not path.exists():
            continue
        lines = subprocess.run(
            [
                tshark,
                "-n",
                "-r",
                str(path),
                "-T",
                "fields",
                "-E",
                "occurrence=a",
                "-E",
                "aggregator=;",
                "-e",
                "geneve.option",
                "-e",
                "tcp.flags",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        table = scan_table(path, columns=["options", "tcp_flags", "malformed"])
        for line, row in zip(lines, table.to_pylist()):
            opts, flags = line.split("\t")
            if row["malformed"]:
                continue
            ours = [
                ("%04x%02x%02x" % (o["class"], o["type"], o["length"]) + o["data"].hex())
                for o in row["options"]
            ]
            assert ours == [o.replace(":", "") for o in opts.split(";") if o]
            if row["tcp_flags"] is not None:
                assert int(flags.split(";")[-1], 16) == row["tcp_flags"]
                checked += 1
    assert checked > 10
