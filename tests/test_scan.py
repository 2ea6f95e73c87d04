"""scan(): light records for all five encapsulations, checked against annotated
hex vectors, against Scapy's own dissection field by field, against tshark's
per-VNI counts, and the vectorised stats path against the per-packet one."""

import collections
import io
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import PcapReader

from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.l2tpv3 import L2TPv3, L2TPv3Control, L2TPv3UDP
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.stt import STT, STTFragment
from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapWriter,
    PcapngWriter,
)
from scapy_geneve.capture.scan import (
    KINDS,
    PacketFilter,
    ScanStats,
    compute_stats,
    filter_capture,
    parse_packet,
    scan,
)

INNER = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=40000, dport=443)
)
MACS = {"src": "02:00:00:00:00:0c", "dst": "02:00:00:00:00:0d"}
INNER6 = Ether(**MACS) / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5353, dport=53)
OUTER = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="192.0.2.1", dst="192.0.2.2")


def write_pcap(path: Path, frames: List[bytes], linktype: int = LINKTYPE_ETHERNET) -> Path:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, linktype, nanosecond=True)
        for i, frame in enumerate(frames):
            writer.write(bytes(frame), 1_700_000_000_000_000_000 + i * 1000)
    return path


# -- annotated vectors ---------------------------------------------------------------
# Outer Ethernet + IPv4 (20) + UDP (8) headers are prepended by _udp4().
def _udp4(dport: int, payload: bytes, sport: int = 50000) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        1,
        0x4000,
        64,
        17,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 2]),
    )
    return bytes(6) + bytes(6) + b"\x08\x00" + ip + udp


INNER_BYTES = bytes(INNER)


# Annotated hex vectors below: one header field per line, comments aligned.
# fmt: off
class TestVectors:
    def test_geneve_gcp_options(self) -> None:
        """The GCP sample of tcpdump's geneve-gcp.pcap (specs §1.5): three options."""
        geneve = bytes.fromhex(
            "0a 00 0800 000000 00"              # Opt Len 10 (40 bytes), proto IPv4, VNI 0
            "0132 01 01 800000d1"               # class 0x0132 type 1 len 1: VNID/direction
            "0132 02 04 0800000d c0a86402 0000000000000000"   # type 2 len 4: endpoint ID
            "0132 03 02 0000000000001234")      # type 3 len 2: profile ID
        inner_ip = bytes(IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=1, dport=2))
        rec = parse_packet(_udp4(6081, geneve + inner_ip))
        assert rec.kind == "geneve" and rec.vni == 0 and rec.proto == 0x0800
        assert [(o.classid, o.type, o.critical, o.length) for o in rec.options] == [
            (0x0132, 1, False, 1), (0x0132, 2, False, 4), (0x0132, 3, False, 2)]
        assert rec.inner_5tuple == ("10.1.1.1", "10.1.1.2", 17, 1, 2)
        assert not rec.malformed

    def test_geneve_critical_ovn(self) -> None:
        """C bit (0x40 of byte 1) and an OVN option, type 0x80 = critical."""
        geneve = bytes.fromhex("02 40 6558 001388 00"   # Opt Len 2, C, TEB, VNI 5000
                               "0102 80 01 00010002")   # OVN class, critical, len 1
        rec = parse_packet(_udp4(6081, geneve + INNER_BYTES))
        assert rec.critical is True and rec.oam is False and rec.vni == 5000
        assert rec.options[0].critical and rec.options[0].classid == 0x0102
        assert rec.inner_5tuple == ("10.0.0.1", "10.0.0.2", 6, 40000, 443)
        assert rec.outer_src == "192.0.2.1" and rec.outer_dport == 6081

    def test_geneve_unknown_version_is_malformed(self) -> None:
        """RFC 8926 §3.4: only version 0; the options of another are not walked."""
        rec = parse_packet(_udp4(6081, bytes.fromhex("41 00 6558 000001 00 00000000")))
        assert rec.kind == "geneve" and rec.vni == 1 and rec.malformed
        assert "version 1" in rec.reason and rec.options == ()

    def test_geneve_option_overrun(self) -> None:
        """Σ options must equal Opt Len (§3.5): a Length of 2 words in a 1-word Opt Len."""
        rec = parse_packet(_udp4(6081, bytes.fromhex("01 00 6558 000001 00 0101 01 02")
                                 + bytes(16)))
        assert rec.malformed and "overruns Opt Len" in rec.reason
        assert rec.options[0].length == 2

    def test_vxlan_and_gpe(self) -> None:
        vxlan = bytes.fromhex("08 000000 0000c8 00")             # I flag, VNI 200
        rec = parse_packet(_udp4(4789, vxlan + INNER_BYTES))
        assert (rec.kind, rec.vni, rec.inner_proto) == ("vxlan", 200, 6)
        assert parse_packet(_udp4(8472, vxlan + INNER_BYTES)).kind == "vxlan"
        gpe = bytes.fromhex("0c 0000 01 00002a 00")              # I+P, next proto IPv4, VNI 42
        rec = parse_packet(_udp4(4790, gpe + bytes(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP())))
        assert (rec.kind, rec.vni, rec.proto, rec.inner_proto) == ("vxlan-gpe", 42, 1, 1)
        rec = parse_packet(_udp4(4789, bytes.fromhex("00 000000 0000c8 00") + INNER_BYTES))
        assert rec.malformed and "I flag" in rec.reason

    def test_nvgre_key_split(self) -> None:
        """RFC 7637: K=1, proto 0x6558, key = VSID (24 bits) | FlowID (8 bits)."""
        gre = bytes.fromhex("2000 6558 abcdef 5a")
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(gre) + len(INNER_BYTES), 1, 0, 64,
                         47, 0, bytes(4), bytes(4))
        rec = parse_packet(bytes(12) + b"\x08\x00" + ip + gre + INNER_BYTES)
        assert (rec.kind, rec.vni, rec.flow_id) == ("nvgre", 0xABCDEF, 0x5A)
        assert rec.inner_dport == 443
        plain = bytes.fromhex("0000 0800")        # GRE without key: not NVGRE
        ip = ip[:2] + struct.pack("!H", 24) + ip[4:]
        assert parse_packet(bytes(12) + b"\x08\x00" + ip + plain).kind is None

    def test_stt_first_and_continuation(self) -> None:
        """STT: the 18-byte header only where seq & 0xFFFF == 0; context ID at +8."""
        stt = bytes.fromhex("00 0c 00 00 0000 0000 1122334455667788 0000")
        def tcp(seq: int) -> bytes:
            return struct.pack("!HHIIBBHHH", 50000, 7471, seq, 7, 0x50, 0x18, 65535, 0, 0)

        def frame(seg: bytes) -> bytes:
            return bytes(12) + b"\x08\x00" + struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0, bytes(4), bytes(4)) + seg
        first = parse_packet(frame(tcp(200 << 16) + stt + INNER_BYTES))
        assert (first.kind, first.vni, first.stt_offset) == ("stt", 0x1122334455667788, 0)
        assert first.inner_dport == 443
        later = parse_packet(frame(tcp((200 << 16) | 1448) + bytes(100)))
        assert (later.kind, later.vni, later.stt_offset) == ("stt", None, 1448)

    def test_l2tpv3_ip_and_udp(self) -> None:
        """RFC 3931: session ID first over IP (0 = control); version nibble 3 over UDP."""
        def ip(body: bytes) -> bytes:
            return bytes(12) + b"\x08\x00" + struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 115, 0, bytes(4), bytes(4)) + body
        rec = parse_packet(ip(bytes.fromhex("0000abcd") + INNER_BYTES))
        assert (rec.kind, rec.vni, rec.control, rec.inner_dport) == ("l2tpv3", 0xABCD, False, 443)
        # control: zero session ID, T|L|S + Ver 3, Length 12, CCID 1, Ns 0, Nr 0 (a ZLB)
        rec = parse_packet(ip(bytes.fromhex("00000000 c803 000c 00000001 0000 0000")))
        assert (rec.kind, rec.vni, rec.control, rec.malformed) == ("l2tpv3", None, True, False)
        rec = parse_packet(ip(bytes.fromhex("00000000 c803 000c")))
        assert rec.malformed and rec.reason == "truncated L2TPv3 control header"
        rec = parse_packet(_udp4(1701, bytes.fromhex("0003 0000 00001234") + INNER_BYTES))
        assert (rec.kind, rec.vni, rec.control) == ("l2tpv3", 0x1234, False)
        rec = parse_packet(_udp4(1701, bytes.fromhex("c802 0014") + bytes(16)))
        assert rec.kind is None              # L2TPv2: not ours
        cookie = parse_packet(_udp4(1701, bytes.fromhex("0003 0000 00001234 cafef00d")
                                    + INNER_BYTES), l2tp_cookie=4)
        assert cookie.inner_dport == 443

    def test_link_types_and_vlans(self) -> None:
        geneve = bytes(Geneve(vni=7) / INNER)
        l3 = _udp4(6081, geneve)[14:]
        sll = struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + l3
        sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + l3
        qinq = bytes(12) + bytes.fromhex("88a8 0064 8100 00c8 0800") + l3
        for data, linktype in ((sll, LINKTYPE_LINUX_SLL), (sll2, LINKTYPE_LINUX_SLL2),
                               (l3, LINKTYPE_RAW), (qinq, LINKTYPE_ETHERNET)):
            rec = parse_packet(data, linktype)
            assert (rec.kind, rec.vni, rec.inner_dport) == ("geneve", 7, 443), linktype
        assert parse_packet(qinq).vlans == (100, 200)

    def test_ipv6_underlay_with_extension_header(self) -> None:
        pkt = Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / \
            bytes.fromhex("11 00 0000 00000000")      # Destination Options header, 8 bytes
        inner = bytes(UDP(sport=1, dport=6081) / Geneve(vni=9) / INNER6)
        data = bytes(pkt)[:14] + bytes(pkt)[14:18] + struct.pack("!H", 8 + len(inner)) + \
            bytes([60]) + bytes(pkt)[21:54] + bytes.fromhex("11 00 0000 00000000") + inner
        rec = parse_packet(data)
        assert (rec.outer_ip, rec.outer_src, rec.kind, rec.vni) == (6, "2001:db8::1", "geneve", 9)
        assert rec.inner_5tuple == ("fd00::1", "fd00::2", 17, 5353, 53)

    def test_snapped_is_not_malformed(self) -> None:
        """A frame cut by the snaplen (caplen < wire length) is 'snapped'."""
        frame = bytes(OUTER / UDP(dport=6081) / Geneve(vni=3) / INNER)
        cut = frame[:14 + 20 + 8 + 4]
        rec = parse_packet(cut, wirelen=len(frame))
        assert rec.snapped and not rec.malformed
        rec = parse_packet(cut)                    # same bytes, but that is the whole frame
        assert rec.malformed and rec.reason == "truncated Geneve header"

    def test_ip_padding_is_not_parsed(self) -> None:
        """Ethernet padding after the IPv4 total length is not tunnel data."""
        frame = bytes(OUTER / UDP(dport=6081) / b"\x00\x00")
        rec = parse_packet(frame + bytes(20))       # padded to the Ethernet minimum
        assert rec.malformed and rec.reason == "truncated Geneve header"
# fmt: on


# -- a capture with all five encapsulations, built with Scapy's layers --------------
def _all_kinds_frames() -> List[Any]:
    opts = [
        GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02"),
        GeneveOption(classid=0x0108, type=0x03, data=b"\xde\xad\xbe\xef"),
        GeneveOption(classid=0xFFFF, type=0x01, data=b""),
    ]
    frames = [
        OUTER / UDP(sport=50001, dport=6081) / Geneve(vni=5000, options=opts[:1]) / INNER,
        OUTER / UDP(sport=50002, dport=6081) / Geneve(vni=5001, options=opts) / INNER6,
        OUTER
        / UDP(sport=50003, dport=6081)
        / Geneve(vni=5001, proto=0x0800)
        / IP(src="10.9.9.9", dst="10.8.8.8")
        / ICMP(),
        Ether(**MACS)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=50004, dport=6081)
        / Geneve(vni=77)
        / INNER,
        Ether(**MACS)
        / Dot1Q(vlan=10)
        / IP(src="192.0.2.7", dst="192.0.2.8")
        / UDP(sport=50005, dport=6081)
        / Geneve(vni=5000, options=opts[1:])
        / INNER,
        OUTER / UDP(sport=50006, dport=4789) / VXLAN(flags=0x08, vni=200) / INNER,
        OUTER / UDP(sport=50007, dport=8472) / VXLAN(flags=0x08, vni=201) / INNER6,
        OUTER / UDP(sport=50010, dport=4790) / VXLAN(flags=0x0C, NextProtocol=3, vni=300) / INNER,
        OUTER / NVGRE(vsid=0x1234, flowid=7) / INNER,
        OUTER
        / TCP(sport=50008, dport=7471, seq=(18 + len(INNER_BYTES)) << 16, ack=9, flags="PA")
        / STT(context_id=0x1122334455667788)
        / INNER,
        OUTER / L2TPv3(session_id=0xABCDEF01) / INNER,
        OUTER / UDP(sport=1701, dport=1701) / L2TPv3UDP() / L2TPv3(session_id=42) / INNER6,
        OUTER / UDP(sport=50009, dport=53) / Raw(b"\x00" * 12),
        Ether(**MACS) / Raw(b"\x00" * 46),
    ]
    return frames


@pytest.fixture(scope="module")
def all_kinds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "all_kinds.pcap"
    return write_pcap(path, [bytes(f) for f in _all_kinds_frames()])


def scapy_view(pkt: Any, stt_frames: Optional[Dict[Tuple[str, str, int], int]] = None) -> Dict[str, Any]:
    """What Scapy's dissection says, in scan's terms (kind, vni, options, inner).

    ``stt_frames`` carries STT context IDs from first to later segments by the
    reassembly key (outer src, outer dst, TCP ack), as scan does."""
    stt_frames = {} if stt_frames is None else stt_frames
    view: Dict[str, Any] = {"kind": None, "vni": None, "options": [], "inner": None, "outer": None}
    outer = next((layer for layer in pkt.layers() if layer in (IP, IPv6)), None)
    outer = pkt.getlayer(outer) if outer is not None else None
    if outer is not None:
        view["outer"] = (outer.src, outer.dst)
    encap = None
    if pkt.haslayer(Geneve):
        encap = pkt[Geneve]
        view.update(
            kind="geneve", vni=encap.vni, options=[(o.classid, o.type, o.length) for o in encap.options]
        )
    elif pkt.haslayer(VXLAN):
        encap = pkt[VXLAN]
        view.update(kind="vxlan-gpe" if pkt[UDP].dport == 4790 else "vxlan", vni=encap.vni)
        if pkt[UDP].dport != 4790 and isinstance(encap.payload, Raw):
            # Scapy reads reserved flag bits as GPE's; RFC 7348 §5 says they are
            # ignored on receipt, so the payload is Ethernet.
            encap = VXLAN(bytes(encap)[:8]) / Ether(bytes(encap.payload))
    elif pkt.haslayer(NVGRE):
        encap = pkt[NVGRE]
        view.update(kind="nvgre", vni=encap.vsid)
    elif pkt.haslayer(STT):
        encap = pkt[STT]
        view.update(kind="stt", vni=encap.context_id)
        stt_frames[(outer.src, outer.dst, pkt[TCP].ack)] = encap.context_id
    elif pkt.haslayer(STTFragment):
        view.update(kind="stt", vni=stt_frames.get((outer.src, outer.dst, pkt[TCP].ack)))
    elif pkt.haslayer(L2TPv3):
        encap = pkt[L2TPv3]
        view.update(kind="l2tpv3", vni=encap.session_id or None)
    elif pkt.haslayer(L2TPv3Control):
        view.update(kind="l2tpv3")
    if encap is not None:
        # scan reads the inner IP header behind Ethernet/802.1Q only (not behind
        # MPLS or NSH, which Scapy reaches once those contribs are loaded).
        inner = encap.payload
        while type(inner).__name__ in ("Ether", "Dot1Q", "Dot1AD"):
            inner = inner.payload
        if not isinstance(inner, (IP, IPv6)):
            inner = None
        if inner is not None:
            l4 = inner.payload
            ports = (l4.sport, l4.dport) if isinstance(l4, (TCP, UDP)) else (None, None)
            proto = inner.proto if isinstance(inner, IP) else inner.nh
            view["inner"] = (inner.src, inner.dst, proto) + ports
    return view


def scan_view(rec: Any) -> Dict[str, Any]:
    return {
        "kind": rec.kind,
        "vni": rec.vni,
        "options": [(o.classid, o.type, o.length) for o in rec.options],
        "inner": rec.inner_5tuple,
        "outer": (rec.outer_src, rec.outer_dst) if rec.outer_src else None,
    }


def _agree_with_scapy(path: Path) -> int:
    records = list(scan(path))
    with PcapReader(str(path)) as reader:
        packets = list(reader)
    assert len(records) == len(packets)
    checked = 0
    stt_frames: Dict[Tuple[str, str, int], int] = {}
    for rec, pkt in zip(records, packets):
        if rec.malformed or rec.snapped:
            continue
        assert scan_view(rec) == scapy_view(pkt, stt_frames), "packet %d" % rec.number
        checked += 1
    return checked


class TestAgreesWithScapy:
    def test_generated_all_kinds(self, all_kinds: Path) -> None:
        assert _agree_with_scapy(all_kinds) == len(_all_kinds_frames())
        kinds = collections.Counter(rec.kind for rec in scan(all_kinds))
        assert set(kinds) == set(KINDS) | {None}

    @pytest.mark.parametrize(
        "name",
        [
            "geneve.pcap",
            "vxlan.pcap",
            "vxlan_port_8472.pcap",
            "gso-ipv4-geneve-ipv4.pcap",
            "gso-ipv4-geneve-ipv6.pcap",
            "gso-ipv6-geneve-ipv4.pcap",
            "gso-ipv4-vxlan-ipv4.pcap",
            "gso-ipv6-vxlan-ipv6.pcap",
            "various_gre.pcap",
        ],
    )
    def test_corpus(self, corpus: Path, name: str) -> None:
        path = corpus / name
        if not path.exists():
            pytest.skip("%s not in the corpus" % name)
        assert _agree_with_scapy(path) > 0


PROJECT_PCAPS = sorted((Path(__file__).resolve().parent.parent / "pcaps").glob("*.pcap"))


@pytest.mark.parametrize("path", PROJECT_PCAPS, ids=lambda p: p.name)
def test_project_pcaps_agree_with_scapy(path: Path, no_debug_dissector: None) -> None:
    """The reviewed captures in pcaps/ (every tunnel, malformed ones included:
    Scapy must not raise on them, so the debug dissector is off here)."""
    _agree_with_scapy(path)
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow


class TestStatsPaths:
    """The vectorised stats equal the per-record ones, field for field."""

    @staticmethod
    def _both(path: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        fast = compute_stats(path).to_dict()
        slow = ScanStats(str(path))
        for rec in scan(path):
            slow.add_record(rec)
        slow_dict = slow.to_dict()
        slow_dict["format"] = fast["format"]
        return fast, slow_dict

    def test_generated(self, all_kinds: Path) -> None:
        fast, slow = self._both(all_kinds)
        assert fast == slow
        assert fast["encapsulations"]["geneve"]["packets"] == 5
        assert {(v["kind"], v["vni"]): v["packets"] for v in fast["vnis"]}[("geneve", 5001)] == 2
        assert fast["critical"] == {
            "c_bit_packets": 2,
            "critical_options": 2,
            "critical_option_without_c_bit": 0,
        }

    def test_corpus(self, corpus: Path) -> None:
        for path in sorted(corpus.glob("*.pcap")):
            fast, slow = self._both(path)
            assert fast == slow, path.name

    def test_out_of_range_microseconds(self, tmp_path: Path) -> None:
        """A µs field of 4294967295 (found by hypothesis): no uint32 wrap-around."""
        path = write_pcap(tmp_path / "us.pcap", [bytes(_all_kinds_frames()[0])] * 2)
        data = bytearray(path.read_bytes())
        data[0:4] = b"\xd4\xc3\xb2\xa1"  # a microsecond pcap ...
        struct.pack_into("<I", data, 24 + 4, 0xFFFFFFFF)  # ... with an absurd µs field
        path.write_bytes(bytes(data))
        fast, slow = self._both(path)
        assert fast == slow and fast["last_time"] > 1.7e9 + 4000

    def test_pcapng_several_interfaces(self, tmp_path: Path) -> None:
        path = tmp_path / "multi.pcapng"
        frames = [bytes(f) for f in _all_kinds_frames()]
        with open(path, "wb") as handle:
            writer = PcapngWriter(handle)
            eth = writer.add_interface(LINKTYPE_ETHERNET)
            raw = writer.add_interface(LINKTYPE_RAW, tsresol=9)
            for i, frame in enumerate(frames):
                writer.write(frame, 10**18 + i, eth)
                if frame[12:14] == b"\x08\x00":
                    writer.write(frame[14:], 10**18 + i, raw)
        fast, slow = self._both(path)
        assert fast == slow
        assert fast["linktypes"] == {"EN10MB": len(frames), "RAW": len(frames) - 3}


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_record_headers_in_both_byte_orders(tmp_path: Path, endian: str, nanosecond: bool) -> None:
    """scan_batch.header_arrays reads each record header (ts seconds, fraction, caplen,
    wirelen: 16 bytes) as the reader's own record walk does, in both byte orders and
    resolutions, fractions up to 0xFFFFFFFF included; and stats agree with records."""
    from scapy_geneve.capture.pcapio import open_capture
    from scapy_geneve.capture.scan_batch import header_arrays, numpy

    frames = [bytes(f) for f in _all_kinds_frames()]
    path = tmp_path / "order.pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=nanosecond, endian=endian)
        for i, frame in enumerate(frames):
            writer.write(frame[: 20 + i], (1 << 31) * 10**9 + i * 999, len(frame) + i)
    data = bytearray(path.read_bytes())
    struct.pack_into(endian + "I", data, 24 + 4, 0xFFFFFFFF)  # the first fraction: all ones
    path.write_bytes(bytes(data))
    with open_capture(path) as reader:
        batch = next(reader.batches())
        data_off, caplen, wirelen, ts_ns, _linktype = header_arrays(numpy(), batch)
        records = list(batch.records())
    assert ts_ns.tolist() == [r.ts_ns for r in records]
    assert caplen.tolist() == [r.caplen for r in records] == [20 + i for i in range(len(frames))]
    assert wirelen.tolist() == [r.wirelen for r in records]
    assert [bytes(batch.buf[d : d + c]) for d, c in zip(data_off.tolist(), caplen.tolist())] == [
        r.data for r in records
    ]
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow


@pytest.mark.parametrize("stamped", [0, 2])
def test_packets_without_timestamps(tmp_path: Path, stamped: int) -> None:
    """pcapng Simple Packet Blocks carry no timestamp: the batch stats' first and last
    times come from the other packets (none: no time), as add_record's do."""
    frames = [bytes(f) for f in _all_kinds_frames()]
    path = tmp_path / "spb.pcapng"
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        writer.add_interface(LINKTYPE_ETHERNET)
        for i, frame in enumerate(frames):
            if i < stamped:
                writer.write(frame, 10**18 + i * 10**9)
            else:
                writer.write_simple(frame)
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow
    assert (fast["first_time"], fast["last_time"]) == ((1e9, 1e9 + 1) if stamped else (None, None))


class TestFilterPredicate:
    def test_mask_equals_match(self, all_kinds: Path) -> None:
        from scapy_geneve.capture.pcapio import open_capture
        from scapy_geneve.capture.scan import analyse_batch

        filters = [
            PacketFilter(vni=[5001]),
            PacketFilter(kind=["stt", "nvgre"]),
            PacketFilter(option_class=[0x0108]),
            PacketFilter(option_type=[0x80]),
            PacketFilter(option_class=[0x0102], option_type=[0x03]),
            PacketFilter(vni=[0x1122334455667788]),
            PacketFilter(malformed=True),
            PacketFilter(),
            PacketFilter(vni=[5001], invert=True),
            PacketFilter(invert=True),
        ]
        records = list(scan(all_kinds))
        with open_capture(all_kinds) as reader:
            batch = next(iter(reader.batches()))
        result = analyse_batch(batch)
        for pfilter in filters:
            assert pfilter.mask(result).tolist() == [pfilter.match(r) for r in records]
        # class AND type on the same option: 0x0102 is only ever type 0x80
        assert not any(filters[4].match(r) for r in records)

    def test_bad_values(self) -> None:
        with pytest.raises(ValueError, match="unknown encapsulation kind"):
            PacketFilter(kind=["gre"])
        with pytest.raises(ValueError, match="16-bit"):
            PacketFilter(option_class=[0x10000])


# -- tshark as an oracle -----------------------------------------------------------------
TSHARK_FIELDS = ["geneve.vni", "vxlan.vni", "gre.key", "stt.context_id", "l2tp.sid", "udp.dstport"]


@pytest.mark.oracle
def test_tshark_counts_per_vni(tshark: str, all_kinds: Path, corpus: Path) -> None:
    """tshark's per-VNI packet counts equal ours (NVGRE: VSID = gre.key >> 8)."""
    for path in [all_kinds, corpus / "geneve.pcap", corpus / "vxlan.pcap", corpus / "vxlan_port_8472.pcap"]:
        out = subprocess.run(
            [
                tshark,
                "-n",
                "-r",
                str(path),
                "-o",
                "ip.try_heuristic_first:TRUE",
                "-d",
                "udp.port==8472,vxlan",
                "-T",
                "fields",
                "-E",
                "occurrence=l",
                "-E",
                "separator=|",
            ]
            + sum((["-e", f] for f in TSHARK_FIELDS), []),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        theirs: Dict[Tuple[str, int], int] = collections.Counter()
        for line in out.splitlines():
            cols = line.split("|")
            for kind, value in zip(("geneve", "vxlan", "nvgre", "stt", "l2tpv3"), cols):
                if value:
                    if kind == "vxlan" and cols[-1] == "4790":
                        kind = "vxlan-gpe"  # one tshark field for both
                    number = int(value, 0)
                    theirs[(kind, number >> 8 if kind == "nvgre" else number)] += 1
                    break
        ours = {(v["kind"], v["vni"]): v["packets"] for v in compute_stats(path).to_dict()["vnis"]}
        assert ours == dict(theirs), path.name


# -- the benchmark's generated capture (struct-built, independent of Scapy) --------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_pcap", Path(__file__).resolve().parent.parent / "bench" / "gen_pcap.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("gen") / "gen.pcap"
    module.generate(str(path), 3000, seed=7)
    return path


def test_generated_capture_agrees_with_scapy(generated: Path) -> None:
    """Field by field on the first 400 packets of bench/gen_pcap.py's mix."""
    records = list(scan(generated))[:400]
    with PcapReader(str(generated)) as reader:
        for rec, pkt in zip(records, reader):
            assert scan_view(rec) == scapy_view(pkt), "packet %d" % rec.number


@pytest.mark.oracle
def test_generated_capture_agrees_with_tshark(tshark: str, generated: Path) -> None:
    """VNI and options per packet, and per-VNI counts, on 3000 packets.

    tshark tries the *lower* UDP port's dissector first, so a Geneve packet
    from source port 5353 shows as mDNS there; RFC 8926 §3.3 identifies Geneve
    by the destination port only.  Packets whose source port is below their
    destination port are therefore compared by count only where tshark agrees.
    """
    out = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(generated),
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-E",
            "separator=|",
            "-e",
            "geneve.vni",
            "-e",
            "vxlan.vni",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.option.type",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    records = list(scan(generated))
    assert len(out) == len(records)
    compared = 0
    vnis: Dict[Tuple[str, int], int] = collections.Counter()
    for rec, line in zip(records, out):
        gvni, xvni, classes, types, sport, dport = line.split("|")
        if sport and int(sport.split(",")[0]) < int(dport.split(",")[0]):
            continue  # tshark's lower-port-first choice, see above
        compared += 1
        theirs = ("geneve", int(gvni, 0)) if gvni else ("vxlan", int(xvni, 0)) if xvni else None
        assert ((rec.kind, rec.vni) if rec.vni is not None else None) == theirs, rec.number
        opts = (
            [(int(c, 0), int(t, 0)) for c, t in zip(classes.split(","), types.split(","))] if classes else []
        )
        assert [(o.classid, o.type) for o in rec.options] == opts, rec.number
        if theirs:
            vnis[theirs] += 1
    assert compared > len(records) * 0.8
    ours: Dict[Tuple[str, int], int] = collections.Counter(
        (r.kind, r.vni)
        for r, line in zip(records, out)
        if r.vni is not None
        and not (
            line.split("|")[4]
            and int(line.split("|")[4].split(",")[0]) < int(line.split("|")[5].split(",")[0])
        )
    )
    assert ours == vnis


# -- the Linux kernel as the encapsulator ------------------------------------------------
@pytest.mark.netns
@pytest.mark.parametrize("outer", [4, 6])
def test_kernel_vxlan_capture(outer: int, netns_capable: None, tcpdump: str, tmp_path: Path) -> None:
    """Real VXLAN traffic (VNI 42) that the kernel encapsulated, GSO super-packets
    and wire segments: every packet tcpdump sees to UDP 4789 is VXLAN VNI 42 for
    us, with the overlay TCP 5-tuple; nothing else is called a tunnel."""
    import shutil

    if shutil.which("ethtool") is None:
        pytest.skip("ethtool is not installed (the kernel lab needs it)")
    from .kernel_lab import OVERLAY, vxlan_gso_lab

    with vxlan_gso_lab(tmp_path, "udpcsum", outer, 4) as lab:
        captures = lab.transfer(200_000)
    for path in captures:
        res = subprocess.run(
            [tcpdump, "-nn", "--count", "-r", str(path), "udp dst port 4789"],
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = int(res.stdout.split()[0])  # "22 packets"
        records = list(scan(path))
        vxlan = [r for r in records if r.kind == "vxlan"]
        assert theirs > 10 and len(vxlan) == theirs, path.name
        assert all(r.vni == 42 and not r.malformed for r in vxlan)
        a, b = OVERLAY[4][:2]
        tcp = {(r.inner_src, r.inner_dst) for r in vxlan if r.inner_proto == 6}
        assert tcp == {(a, b), (b, a)}
        # the rest is the overlay's own IPv6 neighbour discovery / MLD (ICMPv6)
        assert {r.inner_proto for r in vxlan} <= {6, 58}
        assert all(r.kind in ("vxlan", None) for r in records)
        stats = compute_stats(path).to_dict()
        assert stats["vnis"] == [
            {"kind": "vxlan", "vni": 42, "packets": theirs, "bytes": sum(r.wirelen for r in vxlan)}
        ]


# -- Open vSwitch as the Geneve encapsulator ---------------------------------------------
@pytest.mark.netns
def test_ovs_geneve_capture(netns_capable: None, tcpdump: str, tshark: str, tmp_path: Path) -> None:
    """OVS (userspace datapath) encapsulates 12 VM frames in Geneve with a critical
    option from its TLV map; the capture of its underlay scans to VNI 5000, C set,
    option 0xffff/0x80 of one word, the VM's 5-tuples, and tshark agrees."""
    import time
    from scapy_geneve.conformance.endpoints import OVSEndpoint, netns_socket, ovs_available

    reason = ovs_available()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "ovs_underlay.pcap"
    count = 12
    with OVSEndpoint(protocols=("geneve",), ipv6=False) as ovs:
        ovs.ofctl(
            "add-flow",
            "br-int",
            "priority=200,udp,in_port=vo,tp_dst=1003,actions=set_field:0x1234abcd->tun_metadata0,output:gnv0",
        )
        cap = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ovs.ns_peer,
                tcpdump,
                "-i",
                "ulp",
                "-U",
                "--immediate-mode",
                "-c",
                str(count),
                "-w",
                str(path),
                "udp dst port 6081",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(0.5)  # tcpdump attaches to the interface
            tx = netns_socket("vp", ovs.ns_vm)
            try:
                for i in range(count):
                    frame = (
                        Ether(src="02:00:00:00:50:01", dst="02:00:00:00:50:02")
                        / IP(src="192.168.50.1", dst="192.168.50.2")
                        / UDP(sport=4000 + i, dport=1003)
                        / b"scan"
                    )
                    ovs.prepare()
                    tx.send(bytes(frame))
            finally:
                tx.close()
            cap.wait(timeout=10)
        finally:
            if cap.poll() is None:
                cap.terminate()
                cap.wait()
    records = list(scan(path))
    assert len(records) == count
    for i, rec in enumerate(records):
        assert (rec.kind, rec.vni, rec.critical, rec.malformed) == ("geneve", 5000, True, False)
        assert [(o.classid, o.type, o.critical, o.length) for o in rec.options] == [(0xFFFF, 0x80, True, 1)]
        assert rec.inner_5tuple == ("192.168.50.1", "192.168.50.2", 17, 4000 + i, 1003)
        assert (rec.outer_src, rec.outer_dst) == ("10.99.0.1", "10.99.0.2")
    out = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "geneve.vni",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.flags.critical",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert [(int(v, 0), int(c, 0), f in ("1", "True")) for v, c, f in rows] == [(5000, 0xFFFF, True)] * count


def test_stt_segments_inherit_the_context_id(tmp_path: Path) -> None:
    """A 3000-byte frame in 3 segments (and another frame interleaved): every
    segment reports its frame's context ID, so --vni keeps whole frames."""
    from scapy_geneve.offload.stt import stt_segment

    big = bytes(INNER / (b"x" * 3000))
    one = stt_segment(big, context_id=0xAA, identifier=1, mss=1400)
    two = stt_segment(big, context_id=0xBB, identifier=2, mss=1400)
    frames = [one[0], two[0], one[1], two[1], one[2], two[2]]
    path = write_pcap(tmp_path / "stt.pcap", [bytes(Ether(**MACS) / f) for f in frames])
    records = list(scan(path))
    assert [(r.stt_offset, r.vni) for r in records] == [
        (0, 0xAA),
        (0, 0xBB),
        (1400, 0xAA),
        (1400, 0xBB),
        (2800, 0xAA),
        (2800, 0xBB),
    ]
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow and fast["without_identifier"] == {}
    assert [r.number for r in scan(path) if PacketFilter(vni=[0xAA]).match(r)] == [1, 3, 5]
    import io

    out = io.BytesIO()
    assert filter_capture(path, out, PacketFilter(vni=[0xAA])).matched == 3
    # a continuation whose first segment is not in the capture has no identifier
    path = write_pcap(tmp_path / "cut.pcap", [bytes(Ether(**MACS) / f) for f in one[1:]])
    assert [r.vni for r in scan(path)] == [None, None]


@pytest.mark.netns
def test_kernel_vxlan_on_the_any_interface_is_sll2(netns_capable: None, tcpdump: str, tmp_path: Path) -> None:
    """`tcpdump -i any` writes Linux cooked v2 (SLL2) records: the kernel's VXLAN
    (VNI 77; ARP, UDP and ICMP port-unreachable inside) scans as it should."""
    import os
    import sys
    import time

    tag = "sgs%d" % os.getpid()
    na, nb = tag + "a", tag + "b"
    path = tmp_path / "any.pcap"

    def run(*cmd: str) -> None:
        subprocess.run(list(cmd), check=True, capture_output=True)

    cap = None
    try:
        for ns in (na, nb):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", "sva", "netns", na, "type", "veth", "peer", "name", "svb", "netns", nb)
        for ns, dev, me, peer, vx in (
            (na, "sva", "10.66.0.1", "10.66.0.2", "172.31.0.1"),
            (nb, "svb", "10.66.0.2", "10.66.0.1", "172.31.0.2"),
        ):
            run("ip", "-n", ns, "addr", "add", me + "/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run(
                "ip",
                "-n",
                ns,
                "link",
                "add",
                "svx",
                "type",
                "vxlan",
                "id",
                "77",
                "local",
                me,
                "remote",
                peer,
                "dstport",
                "4789",
                "dev",
                dev,
            )
            run("ip", "-n", ns, "addr", "add", vx + "/24", "dev", "svx")
            run("ip", "-n", ns, "link", "set", "svx", "up")
        cap = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                na,
                tcpdump,
                "-i",
                "any",
                "-U",
                "--immediate-mode",
                "-w",
                str(path),
                "udp port 4789",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        run(
            "ip",
            "netns",
            "exec",
            na,
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for i in range(3):\n"
            "    s.sendto(b'scan', ('172.31.0.2', 9)); time.sleep(0.2)\n",
        )
        time.sleep(0.3)
    finally:
        if cap is not None:
            cap.terminate()
            cap.wait()
        for ns in (na, nb):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    records = list(scan(path))
    theirs = int(
        subprocess.run(
            [tcpdump, "--count", "-r", str(path), "udp dst port 4789"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]
    )
    assert records and {r.linktype for r in records} == {276}  # LINKTYPE_LINUX_SLL2
    assert len([r for r in records if r.kind == "vxlan"]) == theirs >= 4
    assert {r.vni for r in records if r.kind == "vxlan"} == {77}
    udp = [r.inner_5tuple for r in records if r.inner_proto == 17]
    assert len(udp) == 3 and set(udp) == {("172.31.0.1", "172.31.0.2", 17, udp[0][3], 9)}
    assert any(r.inner_ethertype == 0x0806 for r in records)  # ARP inside
    assert {(r.inner_src, r.inner_dst) for r in records if r.inner_proto == 1} <= {
        ("172.31.0.2", "172.31.0.1")
    }  # port unreachable
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow


# -- pcapng interfaces scan cannot read ---------------------------------------------------
def test_unsupported_interface_is_skipped_not_fatal(tmp_path: Path) -> None:
    """An interface of link type 189 (usbmon) beside an Ethernet one: its packets
    come out as skipped records (not malformed), the Ethernet ones are parsed,
    and the vectorised stats equal the per-record ones."""
    path = tmp_path / "mixed.pcapng"
    frames = [bytes(f) for f in _all_kinds_frames()]
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        usb = writer.add_interface(189)
        eth = writer.add_interface(LINKTYPE_ETHERNET)
        for i, frame in enumerate(frames):
            writer.write(bytes(40), 10**18 + i, usb)
            writer.write(frame, 10**18 + i, eth)
    records = list(scan(path))
    assert [r.skipped for r in records[::2]] == ["link type 189 is not supported"] * len(frames)
    assert not any(r.malformed or r.kind for r in records[::2])
    assert [r.skipped for r in records[1::2]] == [None] * len(frames)
    assert collections.Counter(r.kind for r in records[1::2]) == collections.Counter(
        r.kind for r in scan(write_pcap(tmp_path / "eth.pcap", frames))
    )
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow
    assert fast["skipped"] == {"packets": len(frames), "linktypes": {"189": len(frames)}, "first_packet": 1}


# -- packets and bytes per Geneve option, against tshark ----------------------------------
def _option_frames() -> List[bytes]:
    """Repeated options in one packet (count 2, one packet), two classes, two types."""
    ovn = GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02")
    gwlb = [GeneveOption(classid=0x0108, type=t, data=b"\x00" * 8) for t in (1, 2)]
    out = []
    for i in range(6):
        opts = [ovn] if i % 3 == 0 else gwlb if i % 3 == 1 else [ovn, ovn, gwlb[0]]
        out.append(
            OUTER
            / UDP(sport=50000 + i, dport=6081)
            / Geneve(vni=10 + i % 2, critical=ovn in opts, options=opts)
            / INNER
            / Raw(b"x" * (i * 10))
        )
    return [bytes(f) for f in out]


@pytest.mark.oracle
def test_option_packets_and_bytes_agree_with_tshark(tshark: str, tmp_path: Path) -> None:
    """stats' per-option occurrences, packets and wire bytes, and per-class packets and
    bytes, equal what tshark's Geneve dissector says packet by packet."""
    path = write_pcap(tmp_path / "opts.pcap", _option_frames())
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
            "aggregator=,",
            "-E",
            "separator=|",
            "-e",
            "frame.len",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.option.type",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    per_option: Dict[Tuple[int, int], List[int]] = collections.defaultdict(lambda: [0, 0, 0])
    per_class: Dict[int, List[int]] = collections.defaultdict(lambda: [0, 0])
    for line in lines:
        size, classes, types = line.split("|")
        opts = [(int(c, 0), int(t, 0)) for c, t in zip(classes.split(","), types.split(","))]
        for opt in opts:
            per_option[opt][0] += 1
        for opt in set(opts):
            per_option[opt][1] += 1
            per_option[opt][2] += int(size)
        for cls in {c for c, _t in opts}:
            per_class[cls][0] += 1
            per_class[cls][1] += int(size)
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow
    assert {(o["class"], o["type"]): [o["count"], o["packets"], o["bytes"]] for o in fast["options"]} == dict(
        per_option
    )
    assert {o["class"]: [o["packets"], o["bytes"]] for o in fast["option_classes"]} == dict(per_class)
    assert per_option[(0x0102, 0x80)][:2] == [6, 4]  # repeats counted once per packet


# -- scan()'s records from the vectorised columns = parse_packet's ------------------------
def test_vectorised_records_equal_the_reference_parser(tmp_path: Path) -> None:
    """Every field of every record, on every link type the fast path reads
    (Ethernet with 0-2 VLAN tags, SLL, SLL2, raw IP), outer IPv4 and IPv6,
    first and later IP fragments, and every kind of tunnel."""
    frames = [bytes(f) for f in _all_kinds_frames()]
    variants = []
    for frame in frames:
        eth_type, rest = frame[12:14], frame[14:]
        variants.append(frame)
        variants.append(frame[:12] + b"\x88\xa8\x00\x64\x81\x00\x0f\xff" + eth_type + rest)
    first_frag = bytearray(frames[0])
    first_frag[14 + 6] |= 0x20  # MF: a first fragment, ports present
    later_frag = bytearray(frames[0])
    later_frag[14 + 7] = 0x10  # offset 16: no UDP header here
    variants += [bytes(first_frag), bytes(later_frag)]
    path = tmp_path / "every.pcapng"
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle)
        eth = writer.add_interface(LINKTYPE_ETHERNET)
        raw = writer.add_interface(LINKTYPE_RAW, tsresol=9)
        sll = writer.add_interface(LINKTYPE_LINUX_SLL)
        sll2 = writer.add_interface(LINKTYPE_LINUX_SLL2)
        for i, frame in enumerate(variants):
            writer.write(frame, 10**18 + i, eth)
            if frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
                writer.write(frame[14:], 10**18 + i, raw)
                writer.write(
                    b"\x00\x00\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + frame[12:], 10**18 + i, sll
                )
                writer.write(
                    frame[12:14]
                    + b"\x00\x00"
                    + b"\x00\x00\x00\x02\x00\x01\x00\x06"
                    + frame[6:12]
                    + b"\x00\x00"
                    + frame[14:],
                    10**18 + i,
                    sll2,
                )
    fast = [rec.as_dict() for rec in scan(path)]
    slow = [rec.as_dict() for rec in scan(path, vectorised=False)]
    assert fast == slow
    assert {r["linktype"] for r in fast} == {
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_LINUX_SLL2,
    }
    assert (100, 0xFFF) in {tuple(r["vlans"]) for r in fast}
    assert {r["kind"] for r in fast} == set(KINDS) | {None}


def _many_options_frames(context_ids: Tuple[int, ...]) -> List[bytes]:
    """60 Geneve packets with 0-5 options from 12 (class, type) kinds over 4 classes
    (a kind twice in a packet, a class under two types), the same VNIs over Geneve and
    VXLAN, and STT frames with CONTEXT_IDS."""
    import random

    rng = random.Random(7)
    kinds = [(cls, typ) for cls in (0x0102, 0x0108, 0x0200, 0xFFF0) for typ in (0x01, 0x80, 0x7F)]
    out = []
    for i in range(60):
        opts = [
            GeneveOption(classid=cls, type=typ, data=b"\x00" * 4 * rng.randrange(3))
            for cls, typ in (rng.choice(kinds) for _ in range(rng.randrange(6)))
        ]
        out.append(OUTER / UDP(sport=40000 + i, dport=6081) / Geneve(vni=i % 3, options=opts) / INNER)
        out.append(OUTER / UDP(sport=40000 + i, dport=4789) / VXLAN(flags=0x08, vni=i % 3) / INNER)
    for context_id in context_ids:
        stt = STT(context_id=context_id)
        seq = (18 + len(INNER_BYTES)) << 16
        out.append(OUTER / TCP(sport=50008, dport=7471, seq=seq, ack=9, flags="PA") / stt / INNER)
    return [bytes(f) for f in out]


@pytest.mark.parametrize(
    "context_ids, wirelen",
    [
        ((5, (1 << 32) - 1), 0),  # identifiers of 32 bits: kind, identifier, length in one word
        ((5, (1 << 32) - 1), 1 << 24),  # ... but a wire length of 2**24: (kind, identifier) words
        ((5, 1 << 40, (1 << 56) - 1), 0),  # identifiers under 56 bits: (kind, identifier) words
        ((5, (1 << 63) + 5, 1 << 56), 0),  # 64-bit STT context IDs: one kind at a time
    ],
)
def test_option_and_identifier_groups_equal_the_per_record_counts(
    tmp_path: Path, context_ids: Tuple[int, ...], wirelen: int
) -> None:
    """The batch path's sort-based grouping (option kinds and classes counted once per
    packet, identifiers per kind, whatever their width) equals add_record's counts."""
    frames = _many_options_frames(context_ids) + _option_frames()  # + (0x0108, 2)
    path = tmp_path / "opts.pcap"
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET)
        for i, frame in enumerate(frames):
            writer.write(frame, i, max(wirelen, len(frame)))
    fast, slow = TestStatsPaths._both(path)
    assert fast == slow
    vnis = {(v["kind"], v["vni"]): v["packets"] for v in fast["vnis"]}
    assert vnis[("geneve", 0)] == vnis[("vxlan", 0)] == 20
    assert {vni for kind, vni in vnis if kind == "stt"} == set(context_ids)
    assert len(fast["options"]) == 12 + 1 and len(fast["option_classes"]) == 4
    assert fast["bytes"] == sum(max(wirelen, len(frame)) for frame in frames)


# -- every path says the same kind and identifier (issues 9 and 12) ----------------------------
class TestOneReading:
    """The vectorised records, the reference records, the stats and the filter read each
    of these packets the same way, and the way a receiver would."""

    @staticmethod
    def _paths(tmp_path: Path, frames: List[bytes]) -> Tuple[List[Any], Dict[str, Any]]:
        path = write_pcap(tmp_path / "one.pcap", frames)
        fast = [rec.as_dict() for rec in scan(path)]
        assert fast == [rec.as_dict() for rec in scan(path, vectorised=False)]
        stats = compute_stats(path).to_dict()
        slow = ScanStats(str(path))
        for rec in scan(path, vectorised=False):
            slow.add_record(rec)
        assert {k: v for k, v in slow.to_dict().items() if k != "format"} == {
            k: v for k, v in stats.items() if k != "format"
        }
        return fast, stats

    def test_udp_length_8_carries_no_tunnel(self, tmp_path: Path) -> None:
        """UDP Length 8, then bytes that look like Geneve VNI 77: no Geneve header was
        sent, so no VNI 77 (a receiver reads an empty datagram and drops it)."""
        geneve = bytes.fromhex("00 00 6558 00004d 00") + INNER_BYTES
        frame = bytearray(_udp4(6081, geneve))
        frame[38:40] = b"\x00\x08"  # UDP Length: the header alone
        records, stats = self._paths(tmp_path, [bytes(frame)])
        assert (records[0]["kind"], records[0]["vni"], records[0]["malformed"]) == ("geneve", None, True)
        assert records[0]["reason"] == "truncated Geneve header" and stats["vnis"] == []
        out = io.BytesIO()
        path = tmp_path / "one.pcap"
        assert filter_capture(path, out, PacketFilter(vni=[77])).matched == 0

    def test_nine_vlan_tags(self, tmp_path: Path) -> None:
        vxlan = bytes.fromhex("08 000000 0000c8 00") + INNER_BYTES
        plain = _udp4(4789, vxlan)
        tags = b"".join(struct.pack("!HH", 0x8100, 10 + i) for i in range(9))
        frame = plain[:12] + tags + plain[12:]
        records, stats = self._paths(tmp_path, [frame])
        assert records[0]["vlans"] == list(range(10, 19))
        assert (records[0]["kind"], records[0]["vni"]) == ("vxlan", 200)
        assert stats["vnis"][0]["vni"] == 200

    def test_vxlan_on_every_registry_port(self, tmp_path: Path) -> None:
        vxlan = bytes.fromhex("08 000000 0000c8 00") + INNER_BYTES
        records, stats = self._paths(tmp_path, [_udp4(p, vxlan) for p in (4789, 8472, 48879)])
        assert [r["kind"] for r in records] == ["vxlan"] * 3
        out = io.BytesIO()
        assert filter_capture(tmp_path / "one.pcap", out, PacketFilter(kind=["vxlan"])).matched == 3

    def test_keyless_gre_is_not_nvgre(self, tmp_path: Path) -> None:
        """RFC 2784 gretap (no key) and keyed GRE with a sequence number are plain GRE;
        only RFC 7637's exact header (K=1, C=S=0, 0x6558) is NVGRE."""

        def gre(header: str) -> bytes:
            body = bytes.fromhex(header) + INNER_BYTES
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(body),
                1,
                0,
                64,
                47,
                0,
                bytes([192, 0, 2, 1]),
                bytes([192, 0, 2, 2]),
            )
            return bytes(12) + b"\x08\x00" + ip + body

        records, stats = self._paths(
            tmp_path, [gre("0000 6558"), gre("3000 6558 000001c8 00000001"), gre("2000 6558 000001c8")]
        )
        assert [(r["kind"], r["vni"], r["malformed"]) for r in records] == [
            (None, None, False),
            (None, None, False),
            ("nvgre", 1, False),
        ]
        assert stats["encapsulations"]["nvgre"]["packets"] == 1

    def test_kind_aliases(self) -> None:
        assert PacketFilter(kind=["gpe", "gnv"]).kind == {"vxlan-gpe", "geneve"}


class _Trickle(io.RawIOBase):
    """A raw stream that takes at most 7 bytes per write, as a raw stream may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        taken = bytes(chunk)[:7]
        self.data += taken
        return len(taken)


@pytest.mark.parametrize("name", ["geneve_options.pcap", "vxlan.pcap", "stt.pcap"])
def test_filter_copies_whole_onto_a_raw_stream_that_takes_part_of_each_write(name: str) -> None:
    """filter_capture writes each run of records at once; a short write is finished, not lost."""
    path = Path(__file__).resolve().parents[1] / "pcaps" / name
    out = _Trickle()
    assert filter_capture(path, out, PacketFilter()).matched > 0
    assert bytes(out.data) == path.read_bytes()


class _Full(_Trickle):
    """A non-blocking raw stream whose buffer fills: 100 bytes, then None (would block)."""

    def write(self, chunk: Any) -> Optional[int]:  # type: ignore[override]
        room = 100 - len(self.data)
        if room <= 0:
            return None
        return super().write(memoryview(chunk)[:room])


def test_filter_onto_a_raw_stream_that_takes_nothing_raises_instead_of_losing_the_rest() -> None:
    """None from a raw stream's write is "nothing written" (non-blocking): it was taken as done."""
    path = Path(__file__).resolve().parents[1] / "pcaps" / "geneve_options.pcap"
    with pytest.raises(BlockingIOError):
        filter_capture(path, _Full(), PacketFilter())
