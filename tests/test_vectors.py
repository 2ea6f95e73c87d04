"""The vector catalogue: every vector builds, says what RFC 8926 / 7348 / 7637
requires of a receiver, and is on the wire what its name claims.

"What its name claims" is checked by tshark (an independent dissector) and,
for the sender-side violations the vectors carry, by the linter.
"""

import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from scapy_geneve.layers.geneve import Geneve
from scapy_geneve.conformance.lint import lint
from scapy_geneve.conformance.vectors import (
    KNOWN_OPTION,
    LEVELS,
    TAG_PREFIX,
    Expect,
    Target,
    Vector,
    register_vector,
    vectors,
)

ALL = vectors()


def test_names_are_unique_and_cover_three_protocols():
    names = [v.name for v in ALL]
    assert len(names) == len(set(names))
    assert {v.protocol for v in ALL} == {"geneve", "vxlan", "nvgre"}
    assert all(v.level in LEVELS and isinstance(v.expect, Expect) for v in ALL)


# Every receiver-side requirement of RFC 8926 §3-4 the issue lists has a vector.
RFC8926_RECEIVER_MUSTS = {
    "unknown critical option": "geneve-unknown-critical-option",
    "unknown non-critical option": "geneve-unknown-noncritical-option",
    "version 1": "geneve-version-1",
    "option lengths not summing to Opt Len": "geneve-optlen-mismatch",
    "O bit": "geneve-oam",
    "C bit": "geneve-c-bit-no-critical-option",
    "zero UDP checksum": "geneve-udp-checksum-zero",
    "wrong UDP checksum": "geneve-udp-checksum-wrong",
    "252 bytes of options": "geneve-252-bytes-of-options",
    "reserved bits set": "geneve-rsvd-bits-set",
    "reserved byte set": "geneve-reserved-byte-set",
    "option R bits set": "geneve-option-r-bits-set",
    "zero UDP checksum over IPv6": "geneve-ipv6-udp-checksum-zero",
    "port identifies Geneve, never reversed": "geneve-ports-reversed",
    "options in any order": "geneve-unknown-noncritical-option-first",
    "header-only (Length 0) option": "geneve-header-only-option",
    "ECN: outer CE copied inward (RFC 6040, §4.4.2)": "geneve-ecn-ce-over-ect0",
    "ECN: outer CE over Not-ECT dropped (RFC 6040, §4.4.2)": "geneve-ecn-ce-over-not-ect",
}


@pytest.mark.parametrize("what", sorted(RFC8926_RECEIVER_MUSTS))
def test_catalogue_covers(what):
    assert RFC8926_RECEIVER_MUSTS[what] in {v.name for v in ALL}


@pytest.mark.parametrize("vector", ALL, ids=[v.name for v in ALL])
def test_vector_builds_for_a_target_and_carries_its_tag(vector):
    t = Target(src_ip="10.1.0.2", dst_ip="10.1.0.1", dst_mac="02:aa:00:00:00:01", vni=77, vsid=0x1234)
    frame = vector.frame(t)
    assert frame == bytes(vector.packet(t))  # deterministic
    assert vector.tag == TAG_PREFIX + vector.name.encode() and vector.tag in frame
    pkt = Ether(frame)
    assert pkt.dst == "02:aa:00:00:00:01"
    if vector.family == 4:
        assert pkt[IP].dst == "10.1.0.1"


def _tshark(tshark, tmp_path, fields, prefs=()):
    path = str(tmp_path / "vectors.pcap")
    wrpcap(path, [v.packet() for v in ALL])
    cmd = [tshark, "-r", path, "-T", "fields", "-E", "occurrence=f"]
    for p in prefs:
        cmd += ["-o", p]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(ALL)
    return {v.name: dict(zip(fields, line.split("\t"))) for v, line in zip(ALL, out)}


@pytest.mark.oracle
def test_tshark_reads_the_geneve_vectors_as_named(tshark, tmp_path):
    f = _tshark(
        tshark,
        tmp_path,
        [
            "geneve.version",
            "geneve.flags.oam",
            "geneve.flags.critical",
            "geneve.flags.reserved",
            "geneve.vni",
            "geneve.option.length",
            "udp.checksum.status",
            "udp.srcport",
            "udp.dstport",
        ],
        prefs=["udp.check_checksum:TRUE"],
    )
    assert int(f["geneve-baseline"]["geneve.vni"], 0) == 5000
    assert f["geneve-version-1"]["geneve.version"] == "1"
    assert f["geneve-version-3"]["geneve.version"] == "3"
    assert f["geneve-oam"]["geneve.flags.oam"] in ("1", "True")
    assert f["geneve-c-bit-no-critical-option"]["geneve.flags.critical"] in ("1", "True")
    assert f["geneve-known-critical-c-clear"]["geneve.flags.critical"] in ("0", "False")
    assert f["geneve-rsvd-bits-set"]["geneve.flags.reserved"] not in ("0", "False", "")
    # the first geneve.option.length is the header's Opt Len in bytes
    assert f["geneve-252-bytes-of-options"]["geneve.option.length"] == "252"
    assert int(f["geneve-unknown-vni"]["geneve.vni"], 0) == 5001
    # checksum status: 0 bad, 1 good, 3 not present
    assert f["geneve-udp-checksum-wrong"]["udp.checksum.status"] == "0"
    assert f["geneve-udp-checksum-zero"]["udp.checksum.status"] == "3"
    assert f["geneve-baseline"]["udp.checksum.status"] == "1"
    # ports reversed: 6081 only as the source port (Wireshark still decodes Geneve by
    # either port, a viewer's convenience; a tunnel endpoint matches the destination)
    assert f["geneve-ports-reversed"]["udp.srcport"] == "6081"
    assert f["geneve-ports-reversed"]["udp.dstport"] != "6081"


@pytest.mark.oracle
def test_tshark_reads_the_vxlan_and_nvgre_vectors_as_named(tshark, tmp_path):
    f = _tshark(
        tshark,
        tmp_path,
        [
            "vxlan.flags",
            "vxlan.vni",
            "vxlan.reserved8",
            "gre.flags.checksum",
            "gre.flags.key",
            "gre.flags.sequence_number",
            "gre.key",
            "vlan.id",
        ],
    )
    assert int(f["vxlan-baseline"]["vxlan.flags"], 16) == 0x0800
    assert int(f["vxlan-i-flag-clear"]["vxlan.flags"], 16) == 0x0000
    assert f["vxlan-reserved8-set"]["vxlan.reserved8"] == "255"
    assert f["vxlan-unknown-vni"]["vxlan.vni"] == "5001"
    assert f["vxlan-inner-vlan"]["vlan.id"] == "10"
    assert int(f["nvgre-baseline"]["gre.key"], 16) == 0x00ABCD5A
    assert int(f["nvgre-flowid-differs"]["gre.key"], 16) == 0x00ABCD5B
    assert f["nvgre-checksum-present"]["gre.flags.checksum"] in ("1", "True")
    assert f["nvgre-sequence-present"]["gre.flags.sequence_number"] in ("1", "True")
    assert f["nvgre-no-key"]["gre.flags.key"] in ("0", "False")
    assert f["nvgre-inner-vlan"]["vlan.id"] == "10"


@pytest.mark.oracle
def test_tshark_reads_the_ecn_vectors_as_named(tshark, tmp_path):
    """RFC 3168 ECN field of the outer and the inner IPv4 header, as tshark reads them."""
    ecn = [v for v in ALL if "-ecn-" in v.name]
    assert len(ecn) == 4
    path = str(tmp_path / "ecn.pcap")
    wrpcap(path, [v.packet() for v in ecn])
    out = subprocess.run(
        [tshark, "-r", path, "-T", "fields", "-E", "occurrence=a", "-e", "ip.dsfield.ecn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = {v.name: line for v, line in zip(ecn, out.splitlines())}
    # outer / inner: 3 = CE, 2 = ECT(0), 0 = Not-ECT
    assert got == {
        "geneve-ecn-ce-over-ect0": "3,2",
        "geneve-ecn-ce-over-not-ect": "3,0",
        "vxlan-ecn-ce-over-ect0": "3,2",
        "vxlan-ecn-ce-over-not-ect": "3,0",
    }
    for v in ecn:
        want = v.expected_inner()
        if want is not None:  # what must come out: the inner frame with CE (0x03), checksum fixed
            assert (
                Ether(want)[IP].tos & 3 == 3 and Ether(want)[IP].chksum == IP(bytes(Ether(want)[IP])).chksum
            )


# The sender-side violation each vector carries, as the linter names it.
LINT = {
    "geneve-version-1": "GNV001",
    "geneve-version-3": "GNV001",
    "geneve-optlen-mismatch": "GNV002",
    "geneve-unknown-critical-option": "GNV014",
    "geneve-unknown-critical-option-c-clear": "GNV004",
    "geneve-oam": "GNV013",
    "geneve-c-bit-no-critical-option": "GNV016",
    "geneve-known-critical-c-clear": "GNV004",
    "geneve-rsvd-bits-set": "GNV005",
    "geneve-reserved-byte-set": "GNV006",
    "geneve-option-r-bits-set": "GNV007",
    "geneve-udp-checksum-wrong": "GNV011",
    "geneve-ports-reversed": "GNV010",
    "geneve-ipv6-udp-checksum-zero": "GNV012",
    "vxlan-udp-checksum-wrong": "VXL006",
    "vxlan-reserved-flags-set": "VXL002",
    "vxlan-reserved24-set": "VXL003",
    "vxlan-ipv6-reserved-flags-set": "VXL002",
    "vxlan-reserved8-set": "VXL004",
    "vxlan-i-flag-clear": "VXL001",
    "vxlan-inner-vlan": "VXL010",
    "nvgre-inner-vlan": "NVG007",
    "nvgre-checksum-present": "NVG002",
    "nvgre-sequence-present": "NVG003",
    "nvgre-no-key": "NVG001",
    # outer CE can only sit over a Not-ECT packet if the encapsulator broke RFC 6040 §4.1
    "geneve-ecn-ce-over-not-ect": "GNV018",
    "vxlan-ecn-ce-over-not-ect": "VXL012",
}


@pytest.mark.parametrize("vector", ALL, ids=[v.name for v in ALL])
def test_linter_names_the_violation_each_vector_carries(vector):
    # the NVGRE vectors are declared NVGRE (keyless GRE is otherwise plain RFC 2784 GRE)
    nvgre = True if vector.protocol == "nvgre" else "auto"
    found = {f.rule for f in lint(Ether(vector.frame()), understood=[KNOWN_OPTION[:2]], nvgre=nvgre)}
    if vector.name in LINT:
        assert LINT[vector.name] in found, found
    else:  # well-formed on the wire: the receiver's configuration decides
        assert not {r for r in found if r not in ("GNV015",)}, found


def test_register_vector_adds_and_replaces():
    def build(t, tag):
        return (
            Ether(src=t.src_mac, dst=t.dst_mac)
            / IP(src=t.src_ip, dst=t.dst_ip)
            / UDP(sport=50000, dport=6081)
            / Geneve(vni=t.vni)
            / t.inner(tag)
        )

    mine = Vector("user-vni-zero-check", "geneve", Expect.DELIVER, "MUST", "my spec §1", "x", build)
    register_vector(mine)
    try:
        assert vectors(names=["user-vni-zero-check"]) == [mine]
        register_vector(Vector("user-vni-zero-check", "geneve", Expect.DROP, "MUST", "s", "y", build))
        assert vectors(names=["user-vni-zero-check"])[0].expect is Expect.DROP
    finally:
        sys.modules["scapy_geneve.conformance.vectors"]._USER_VECTORS.clear()
    assert "user-vni-zero-check" not in {v.name for v in vectors()}


def test_filters_and_unknown_names():
    assert {v.protocol for v in vectors(["vxlan"])} == {"vxlan"}
    assert {v.level for v in vectors(levels=["MUST"])} == {"MUST"}
    with pytest.raises(KeyError, match="no-such-vector"):
        vectors(names=["no-such-vector"])


def test_expectations_say_what_a_receiver_does():
    assert Expect.DELIVER.delivers is True and Expect.DELIVER_IGNORING_OPTION.delivers is True
    assert Expect.DROP.delivers is False and Expect.NOT_FORWARDED.delivers is False
    assert Expect.ANY.delivers is None
