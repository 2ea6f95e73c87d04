"""Every conformance vector through Open vSwitch 3.1's userspace datapath.

One OVS (private ovsdb-server + ovs-vswitchd, namespaces made here) serves the
whole module.  The harness's verdicts are then checked against what OVS itself
says it did, by two witnesses that do not share the harness's code path:

- OpenFlow counters: the only flow that outputs to the inner port is
  ``in_port=<tunnel port>,actions=output:vo``; its n_packets grows by one for
  exactly the vectors the harness saw delivered;
- a tcpdump capture on the inner interface for the whole run: the tags it
  recorded are exactly the delivered vectors;
- OVS's drop-reason coverage counters and log account for the drops.

The last test pins OVS 3.1's observed verdicts: the table the README publishes.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from scapy.utils import rdpcap

from scapy_geneve.conformance.endpoints import LAB_STATE_DIR, OVSEndpoint, ovs_available
from scapy_geneve.conformance.harness import DELIVERED, DEVIATION, FAIL, INFO, NA, PASS, run_vectors
from scapy_geneve.conformance.vectors import TAG_PREFIX, vectors

pytestmark = [pytest.mark.netns]


@pytest.fixture(scope="module")
def ovs_run(netns_capable, tcpdump, tmp_path_factory):
    reason = ovs_available()
    if reason:
        pytest.skip(reason)
    pcap = str(tmp_path_factory.mktemp("ovs") / "inner.pcap")
    with OVSEndpoint() as ep:
        log = pcap + ".log"
        with open(log, "w") as err:
            dump = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ep.ns_vm,
                    tcpdump,
                    "--immediate-mode",
                    "-U",
                    "-n",
                    "-i",
                    "vp",
                    "-w",
                    pcap,
                    "udp",
                    "port",
                    "8888",
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + 10
            while "listening on" not in open(log).read():
                assert time.monotonic() < deadline, "tcpdump did not start"
                time.sleep(0.05)
            table = run_vectors(ep)
            time.sleep(0.3)
            ep.appctl("revalidator/wait")  # fold per-thread coverage counters in
            time.sleep(1.1)
            totals = ep.counters()
            ovs_log = ep.log()
        finally:
            dump.send_signal(signal.SIGTERM)
            dump.wait(timeout=10)
        version = ep.version
    captured = {
        bytes(p)[bytes(p).find(TAG_PREFIX) :].split(b"\x00")[0].decode()[len(TAG_PREFIX) :]
        for p in rdpcap(pcap)
        if TAG_PREFIX in bytes(p)
    }
    return {"table": table, "captured": captured, "totals": totals, "log": ovs_log, "version": version}


def test_every_vector_gets_a_verdict_and_controls_pass(ovs_run):
    table = ovs_run["table"]
    assert [r.name for r in table] == [v.name for v in vectors(["geneve", "vxlan", "nvgre"])]
    for r in table:
        if r.vector.level == "CONTROL" and r.verdict != NA:
            assert r.verdict == PASS, r
    assert not [r.name for r in table if r.verdict == NA]  # IPv4 and IPv6 underlays


def test_harness_verdicts_match_the_inner_capture(ovs_run):
    """tcpdump on the inner interface saw exactly the frames the harness called delivered."""
    delivered = {r.name for r in ovs_run["table"] if r.observed == DELIVERED}
    assert ovs_run["captured"] == delivered


# Dropped by OVS's tunnel ECN handling (RFC 6040) while translating the
# flow's actions: the flow matched (and counted) but nothing was output.
# OVS logs each: "dropping tunnel packet marked ECN CE but is not ECN capable".
DROPPED_AFTER_MATCH = {"geneve-ecn-ce-over-not-ect", "vxlan-ecn-ce-over-not-ect"}


def test_harness_verdicts_match_openflow_counters(ovs_run):
    """The tunnel port's output flow counted one packet per delivered vector,
    none otherwise (except drops OVS makes after the match, logged)."""
    for r in ovs_run["table"]:
        if r.verdict == NA:
            continue
        ports = OVSEndpoint.PORTS6 if r.vector.family == 6 else OVSEndpoint.PORTS
        port = ports[r.vector.protocol]
        hits = r.counters.get("flow:%s" % port, 0)
        if r.observed == DELIVERED or r.name in DROPPED_AFTER_MATCH:
            assert hits == 1, (r.name, r.counters)
        else:
            assert hits == 0, (r.name, r.counters)
    assert all(ovs_run["table"].by_name()[n].observed != DELIVERED for n in DROPPED_AFTER_MATCH)


def test_drops_are_accounted_for_by_ovs(ovs_run):
    """Each kind of drop shows up in OVS's own drop-reason counters and log."""
    totals, log = ovs_run["totals"], ovs_run["log"]
    # unknown critical option (x2) and the Opt Len mismatch: invalid tunnel metadata
    assert totals["drop_action_invalid_tunnel_metadata"] >= 3
    assert "Invalid Geneve tunnel metadata" in log
    # versions 1 and 3, and the VXLAN header checks: dropped when popping the tunnel
    assert totals["datapath_drop_tunnel_pop_error"] >= 2
    assert "unknown geneve version" in log
    # unknown VNI / VSID, GRE key mismatch: no tunnel port for the packet
    assert totals["datapath_drop_upcall_error"] >= 3
    # outer CE over a Not-ECT inner packet (RFC 6040 §4.2), Geneve and VXLAN
    assert log.count("dropping tunnel packet marked ECN CE but is not ECN capable") >= len(
        DROPPED_AFTER_MATCH
    )


# OVS 3.1.0 userspace datapath, observed by this harness (the README's table).
OVS_31 = {
    "geneve-baseline": PASS,
    "geneve-no-options": PASS,
    "geneve-version-1": PASS,
    "geneve-version-3": PASS,
    "geneve-optlen-mismatch": PASS,
    "geneve-unknown-critical-option": PASS,
    "geneve-unknown-critical-option-c-clear": PASS,
    "geneve-unknown-noncritical-option": PASS,
    "geneve-unknown-noncritical-option-first": PASS,
    "geneve-header-only-option": PASS,
    "geneve-oam": FAIL,  # O bit: the payload is forwarded
    "geneve-c-bit-no-critical-option": INFO,
    "geneve-known-critical-c-clear": INFO,
    "geneve-rsvd-bits-set": PASS,
    "geneve-reserved-byte-set": PASS,
    "geneve-option-r-bits-set": PASS,
    "geneve-252-bytes-of-options": PASS,
    "geneve-udp-checksum-zero": PASS,
    "geneve-ecn-ce-over-ect0": PASS,  # CE copied into the inner header, checksum fixed
    "geneve-ecn-ce-over-not-ect": PASS,
    "vxlan-ecn-ce-over-ect0": PASS,
    "vxlan-ecn-ce-over-not-ect": PASS,
    "geneve-udp-checksum-wrong": PASS,
    "geneve-ports-reversed": PASS,
    "geneve-unknown-vni": PASS,
    "geneve-ipv6-baseline": PASS,
    "geneve-ipv6-udp-checksum-zero": FAIL,  # zero checksum over IPv6 accepted by default
    "vxlan-baseline": PASS,
    "vxlan-udp-checksum-zero": PASS,
    "vxlan-udp-checksum-wrong": PASS,
    "vxlan-reserved-flags-set": FAIL,  # RFC 7348: ignored on receipt; OVS drops
    "vxlan-reserved24-set": FAIL,
    "vxlan-reserved8-set": FAIL,
    "vxlan-i-flag-clear": PASS,
    "vxlan-inner-vlan": DEVIATION,
    "vxlan-unknown-vni": PASS,
    "vxlan-ipv6-baseline": PASS,
    "vxlan-ipv6-reserved-flags-set": FAIL,
    "vxlan-ipv6-udp-checksum-zero": DEVIATION,  # accepted, as for Geneve over IPv6
    "nvgre-baseline": PASS,
    "nvgre-flowid-differs": DEVIATION,  # the GRE key is matched whole, FlowID included
    "nvgre-flowid-zero": DEVIATION,
    "nvgre-inner-vlan": FAIL,  # tagged inner frames are forwarded
    "nvgre-checksum-present": INFO,
    "nvgre-sequence-present": INFO,
    "nvgre-no-key": PASS,
    "nvgre-unknown-vsid": PASS,
}


def test_ovs_31_verdicts(ovs_run):
    if not ovs_run["version"].rstrip().endswith("3.1.0") and "3.1." not in ovs_run["version"]:
        pytest.skip("verdicts pinned for OVS 3.1; this is %s" % ovs_run["version"])
    got = {r.name: r.verdict for r in ovs_run["table"]}
    assert got == OVS_31
    if os.environ.get("SCAPY_GENEVE_PRINT_TABLE"):
        print("\n" + ovs_run["table"].to_markdown())


def test_delivered_inner_frames_are_unmodified(ovs_run):
    """OVS hands the inner frame over byte for byte (options stripped, nothing else)."""
    for r in ovs_run["table"]:
        if r.observed == DELIVERED:
            assert r.intact, r.name


def test_ovs_meets_the_o_bit_must_once_a_flow_looks_at_it(netns_capable):
    """The geneve-oam FAIL above is the default pipeline's: OVS exposes the O
    bit as tun_flags=+oam, and one flow that sends such packets elsewhere
    (here: drops them) makes the same OVS meet RFC 8926 §3.4, while ordinary
    packets still go through."""
    reason = ovs_available()
    if reason:
        pytest.skip(reason)
    with OVSEndpoint(protocols=("geneve",), ipv6=False) as ep:
        ep.ofctl("add-flow", "br-int", "priority=110,in_port=gnv0,tun_flags=+oam,actions=drop")
        table = run_vectors(ep, vectors(names=["geneve-oam", "geneve-baseline"]))
    by = table.by_name()
    assert by["geneve-oam"].verdict == PASS and by["geneve-oam"].counters.get("flow:prio110") == 1
    assert by["geneve-baseline"].verdict == PASS and by["geneve-baseline"].counters.get("flow:gnv0") == 1


def _lab_of(pid, workdirs=()):
    """The namespaces and OVS daemons of the `conform ovs` run with PID: its children,
    or, once it has ended, the daemons whose control sockets lie in WORKDIRS (another
    test's lab may run beside it: tests run in parallel)."""
    pidns = os.stat("/proc/self/ns/pid").st_ino
    prefix = "sgvp%d.%d" % (pidns, pid)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    namespaces = [line.split()[0] for line in names.splitlines() if line.startswith(prefix)]
    daemons = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    argv = handle.read().split(b"\0")
                with open("/proc/%s/stat" % entry, "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if os.path.basename(argv[0]) not in (b"ovsdb-server", b"ovs-vswitchd"):
                continue
            ours = [b"--unixctl=" + w + b"/" for w in workdirs] or [b"--unixctl=" + LAB_STATE_DIR.encode()]
            if any(a.startswith(o) for a in argv for o in ours) and (workdirs or parent == pid):
                daemons.append((int(entry), argv))
    return namespaces, daemons


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_tears_the_lab_down(netns_capable, signum):
    """SIGTERM/SIGHUP during `conform ovs` tear down what it made (namespaces,
    its run directory, both OVS daemons) and exit 128 + signum; they used to
    leave all of it behind."""
    reason = ovs_available()
    if reason:
        pytest.skip(reason)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "conform", "ovs", "--protocol", "geneve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120  # a guard: the lab is up once both daemons run
        while True:
            namespaces, daemons = _lab_of(proc.pid)
            if len(namespaces) == 3 and len(daemons) == 2:
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the lab did not come up"
            time.sleep(0.1)
        workdirs = {
            a.split(b"=", 1)[1].rsplit(b"/run/", 1)[0]
            for _pid, argv in daemons
            for a in argv
            if a.startswith(b"--unixctl=")
        }
        proc.send_signal(signum)
        code = proc.wait(120)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 128 + signum, err
    assert "Traceback" not in err
    namespaces, daemons = _lab_of(proc.pid, workdirs)
    assert namespaces == [] and daemons == []
    assert not any(os.path.exists(w) for w in workdirs)
