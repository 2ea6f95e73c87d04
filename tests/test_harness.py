"""The harness's mechanics: verdicts, the table, AF_PACKET plumbing in a
namespace, and the pytest plugin a user's suite is built from.

Real endpoints (OVS, the kernel) are in test_ovs_conformance.py and
test_kernel_vxlan_conformance.py; here a scripted endpoint makes every
branch reachable.
"""

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from scapy.layers.inet import IP

from scapy_geneve.conformance.endpoints import (
    LAB_STATE_DIR,
    Endpoint,
    EndpointError,
    InterfaceEndpoint,
    VethEndpoint,
    _run,
    cleanup_stale,
    lab_state_dir,
)
from scapy_geneve.conformance.harness import (
    DELIVERED,
    DEVIATION,
    DROPPED,
    ERROR,
    FAIL,
    INFO,
    NA,
    PASS,
    VerdictTable,
    judge,
    run_vectors,
)
from scapy_geneve.conformance.vectors import Expect, Target, Vector, vectors


def _v(expect, level):
    return Vector("v", "geneve", expect, level, "RFC 8926 §3.4", "r", lambda t, tag: None)


@pytest.mark.parametrize(
    "expect,level,delivered,verdict",
    [
        (Expect.DELIVER, "MUST", True, PASS),
        (Expect.DELIVER, "MUST", False, FAIL),
        (Expect.DROP, "MUST", False, PASS),
        (Expect.DROP, "MUST", True, FAIL),
        (Expect.NOT_FORWARDED, "MUST", True, FAIL),
        (Expect.DELIVER_IGNORING_OPTION, "SHOULD", False, DEVIATION),
        (Expect.DROP, "SHOULD", True, DEVIATION),
        (Expect.DROP, "CONTROL", True, FAIL),
        (Expect.ANY, "MAY", True, INFO),
        (Expect.ANY, "MAY", False, INFO),
    ],
)
def test_judge(expect, level, delivered, verdict):
    assert judge(_v(expect, level), delivered) == verdict


class ScriptedObserver:
    def __init__(self, endpoint):
        self.endpoint = endpoint

    def drain(self):
        self.endpoint.out.clear()

    def wait_for(self, tag, timeout):
        return next((f for f in self.endpoint.out if tag in f), None)

    def close(self):
        self.endpoint.closed = True


class ScriptedEndpoint(Endpoint):
    """Delivers the inner frame of whatever DECIDE(frame) accepts."""

    name = "scripted"
    protocols = {"geneve", "vxlan"}
    families = {4}

    def __init__(self, decide, mangle=False):
        self.decide, self.mangle = decide, mangle
        self.out, self.sent, self.closed = [], 0, False

    def target(self, protocol):
        return Target()

    def send(self, frame):
        self.sent += 1
        if self.decide(frame):
            i = frame.index(b"\x02\x00\x00\x00\x50\x01")  # the inner frame's destination MAC
            inner = frame[i:]
            # mangle: rewrite the inner IPv4 TTL (byte 22), as a router would
            self.out.append(inner[:22] + b"\x01" + inner[23:] if self.mangle else inner)

    def observer(self):
        return ScriptedObserver(self)

    def counters(self):
        return {"sent": self.sent}


def test_run_vectors_judges_each_vector_and_marks_what_the_endpoint_cannot_take():
    ep = ScriptedEndpoint(lambda frame: True)  # forwards everything
    table = run_vectors(ep, vectors())
    by = table.by_name()
    assert by["geneve-baseline"].verdict == PASS and by["geneve-baseline"].observed == DELIVERED
    assert by["geneve-baseline"].intact is True
    assert by["geneve-version-1"].verdict == FAIL
    assert by["geneve-udp-checksum-wrong"].verdict == DEVIATION
    assert by["geneve-known-critical-c-clear"].verdict == INFO
    assert by["geneve-ipv6-baseline"].verdict == NA  # IPv4-only endpoint
    assert by["nvgre-baseline"].verdict == NA  # no NVGRE
    assert by["geneve-baseline"].counters == {"sent": 1}
    assert not table.ok and ep.closed
    assert table.counts()[NA] == len([v for v in vectors() if v.protocol == "nvgre" or v.family == 6])


def test_a_drop_everything_endpoint_fails_the_deliver_vectors():
    # a scripted endpoint answers at once: the shortest positive timeout will do
    table = run_vectors(ScriptedEndpoint(lambda frame: False), vectors(["geneve"]), timeout=0.001)
    assert {r.observed for r in table if r.verdict != NA} == {DROPPED}
    assert table.by_name()["geneve-version-1"].verdict == PASS
    assert table.by_name()["geneve-baseline"].verdict == FAIL


def test_default_vectors_are_the_endpoints_protocols():
    table = run_vectors(ScriptedEndpoint(lambda frame: True))
    assert {r.vector.protocol for r in table} == {"geneve", "vxlan"}


def test_a_modified_inner_frame_is_reported():
    table = run_vectors(ScriptedEndpoint(lambda frame: True, mangle=True), vectors(names=["geneve-baseline"]))
    assert table[0].intact is False and "modified" in table[0].detail


def _rfc6040_decap(frame):
    """RFC 6040 §4.2 for an IPv4-in-IPv4 tunnel frame (outer IP at 14, inner
    Ethernet found by its MAC): copy an outer CE into an ECT inner header and
    fix the inner IPv4 checksum; None where Figure 4 says drop."""
    from scapy.layers.l2 import Ether

    outer_ecn = frame[15] & 3
    i = frame.index(b"\x02\x00\x00\x00\x50\x01")
    inner = Ether(frame[i:])
    if outer_ecn == 3:
        if inner[IP].tos & 3 == 0:
            return None
        inner[IP].tos |= 3
        del inner[IP].chksum
    return bytes(inner)


def test_a_required_change_to_the_inner_frame_is_checked():
    """RFC 6040: an outer CE must reach the inner header.  An endpoint that
    passes the inner frame on unchanged delivers, but not what is required."""
    ecn = vectors(names=["geneve-ecn-ce-over-ect0", "geneve-ecn-ce-over-not-ect"])
    blind = run_vectors(ScriptedEndpoint(lambda f: True), ecn).by_name()
    assert blind["geneve-ecn-ce-over-ect0"].verdict == FAIL
    # inner Ether 14 + TOS at byte 1 of IPv4: ECT(0) (0x02) came out, CE (0x03) was required
    assert (
        blind["geneve-ecn-ce-over-ect0"].detail
        == "inner frame is not the one required: byte 15 of the inner frame is 0x02, 0x03 required"
    )
    assert blind["geneve-ecn-ce-over-not-ect"].verdict == FAIL

    class Rfc6040(ScriptedEndpoint):
        def send(self, frame):
            out = _rfc6040_decap(frame)
            if out is not None:
                self.out.append(out)

    good = run_vectors(Rfc6040(lambda f: True), ecn)
    assert [r.verdict for r in good] == [PASS, PASS] and good[0].intact


def test_a_vector_that_cannot_build_is_an_error_not_a_crash():
    def broken(t, tag):
        raise ValueError("no such option")

    bad = Vector("user-broken", "geneve", Expect.DELIVER, "MUST", "x", "y", broken)
    table = run_vectors(ScriptedEndpoint(lambda f: True), [bad])
    assert table[0].verdict == ERROR and "no such option" in table[0].detail and not table.ok


def test_table_renders_as_text_markdown_and_json():
    table = run_vectors(ScriptedEndpoint(lambda f: b"\x00\x40" not in f[40:50]), vectors(["vxlan"]))
    text = table.to_text()
    assert text.splitlines()[0].split()[:5] == ["vector", "level", "expected", "observed", "verdict"]
    assert "vxlan-baseline" in text and "scripted:" in text.splitlines()[-1]
    md = table.to_markdown().splitlines()
    assert md[0].startswith("| vector |") and len(md) == len(table) + 2
    doc = json.loads(table.to_json())
    assert doc["endpoint"] == "scripted" and len(doc["results"]) == len(table)
    assert set(doc["results"][0]) >= {"vector", "expected", "observed", "verdict", "section", "level"}
    assert isinstance(table, VerdictTable)


@pytest.mark.netns
def test_interface_endpoint_over_a_veth_pair(netns_capable):
    """AF_PACKET plumbing through namespaces: a bare veth 'endpoint' hands every
    frame through unchanged, so every vector's tag comes out the other side."""
    ns = "sgvp%dh-wire" % os.getpid()
    _run(["ip", "netns", "add", ns])
    try:
        _run(["ip", "-n", ns, "link", "add", "wa", "type", "veth", "peer", "name", "wb"])
        for dev in ("wa", "wb"):
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        ep = InterfaceEndpoint(
            "wa",
            "wb",
            Target(),
            protocols=["geneve", "vxlan", "nvgre"],
            send_netns=ns,
            recv_netns=ns,
            name="wire",
        )
        ep.timeout = 1.0
        with ep:
            table = run_vectors(ep)
        assert {r.observed for r in table if r.verdict != NA} == {DELIVERED}
    finally:
        _run(["ip", "netns", "del", ns], check=False)


def _sibling(name):
    """Another test module of this directory, by path (tests/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.netns
def test_veth_endpoint_drives_a_users_endpoint_on_wires_it_made(netns_capable):
    """The user's endpoint here is a Linux vxlan device bridged to the overlay
    wire, built by hand on the two veth ends VethEndpoint hands over.  Its
    verdicts are the kernel endpoint's (test_kernel_vxlan_conformance.LINUX),
    and what the harness saw delivered is what the bridge forwarded."""
    dut = "sgvp%dt-dut" % os.getpid()
    _run(["ip", "netns", "add", dut])
    try:
        target = Target(dst_mac="02:00:00:00:97:01", dst_ip="10.97.0.1", src_ip="10.97.0.2")
        with VethEndpoint(target, protocols=["vxlan"], dut_netns=dut) as ep:
            for cmd in (
                ["addr", "add", "10.97.0.1/24", "dev", ep.dut_underlay],
                [
                    "link",
                    "add",
                    "vx0",
                    "type",
                    "vxlan",
                    "id",
                    "5000",
                    "dstport",
                    "4789",
                    "local",
                    "10.97.0.1",
                    "dev",
                    ep.dut_underlay,
                ],
                ["link", "add", "br0", "type", "bridge"],
                ["link", "set", "vx0", "master", "br0"],
                ["link", "set", ep.dut_overlay, "master", "br0"],
                ["link", "set", "vx0", "up"],
                ["link", "set", "br0", "up"],
            ):
                _run(["ip", "-n", dut] + cmd)
            # software UDP checksum verification, as behind a NIC without rx offload
            _run(["ip", "netns", "exec", dut, "ethtool", "-K", ep.dut_underlay, "rx", "off"])
            ep.timeout = 0.2
            table = run_vectors(ep, [v for v in vectors(["vxlan"]) if v.family == 4])
            bridged = json.loads(_run(["ip", "-n", dut, "-s", "-j", "link", "show", ep.dut_overlay]))[0]
        LINUX = _sibling("test_kernel_vxlan_conformance").LINUX
        assert {r.name: r.verdict for r in table} == {n: v for n, v in LINUX.items() if "ipv6" not in n}
        delivered = [r for r in table if r.observed == DELIVERED]
        assert all(r.intact for r in delivered)
        assert bridged["stats64"]["tx"]["packets"] >= len(delivered)
        assert dut in _run(["ip", "netns", "list"])  # the user's namespace stays
        assert "sgv%du" % os.getpid() not in _run(["ip", "-n", dut, "link", "show"])  # the wires are gone
    finally:
        _run(["ip", "netns", "del", dut], check=False)


def _dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_daemon(name: str, workdir) -> subprocess.Popen:
    """A process that looks exactly like the lab's NAME daemon for WORKDIR
    (argv[0] NAME, ``--unixctl=WORKDIR/run/NAME.ctl``) but is a sleeping Python."""
    return subprocess.Popen(
        [name, "-c", "import time; time.sleep(60)", "--unixctl=%s/run/%s.ctl" % (workdir, name)],
        executable=sys.executable,
    )


def _private_dir(path):
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _stop(*procs):
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.netns
def test_cleanup_stale_removes_what_a_killed_run_left(netns_capable, tmp_path):
    """After a kill -9 the namespaces of the dead run (its pid in the name) and
    its private OVS directory go, with the daemon it recorded; a live run's
    namespace and a process that is not exactly that directory's daemon stay."""
    dead = _dead_pid()
    pidns = os.stat("/proc/self/ns/pid").st_ino
    stale, live = "sgvp%d.%do-ovs" % (pidns, dead), "sgvp%d.%dq-live" % (pidns, os.getpid())
    foreign = "sgvp%d.%do-ovs" % (pidns + 1, dead)  # another PID namespace's: its pids mean nothing here
    state = _private_dir(tmp_path / "state")
    workdir = _private_dir(state / "sgv-ovs.test")
    daemon = _fake_daemon("ovsdb-server", workdir)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(workdir / "run")])
    (workdir / "owner").write_text(
        json.dumps({"pid": dead, "pidns": pidns, "daemons": [daemon.pid, bystander.pid]})
    )
    for ns in (stale, live, foreign):
        _run(["ip", "netns", "add", ns])
    try:
        removed = cleanup_stale(tmpdir=str(state))
        assert stale in removed and str(workdir) in removed and live not in removed and foreign not in removed
        names = _run(["ip", "netns", "list"])
        assert stale not in names and live in names and foreign in names
        assert not workdir.exists()
        assert daemon.wait(timeout=5) == -9
        assert bystander.poll() is None  # names the directory, but is not its daemon
    finally:
        _stop(daemon, bystander)
        for ns in (stale, live, foreign):
            _run(["ip", "netns", "del", ns], check=False)


@pytest.mark.parametrize(
    "owner",
    [
        b"[]",
        b"null",
        b'"pid"',
        b"{}",
        b'{"pid": "1"}',
        b'{"pid": true, "pidns": 1, "daemons": []}',
        b'{"pid": 1, "pidns": 1, "daemons": "12"}',
        b'{"pid": 1, "pidns": 1, "daemons": [[1]]}',
        b'{"pid": -5, "pidns": 1, "daemons": []}',
        b"\xff\xfe",
        b"[" * 4000,
        b"{" * 100000,
    ],
)
def test_cleanup_stale_survives_any_owner_file(tmp_path, owner):
    """Whatever an owner file holds (planted, half written), cleanup_stale
    neither crashes (AttributeError, ValueError, TypeError, RecursionError)
    nor acts on it."""
    state = _private_dir(tmp_path / "state")
    workdir = _private_dir(state / "sgv-ovs.planted")
    (workdir / "owner").write_bytes(owner)
    assert cleanup_stale(netns_dir=str(tmp_path / "no-netns"), tmpdir=str(state)) == []
    assert workdir.exists()


def test_cleanup_stale_never_kills_a_live_run_named_by_a_prefix(tmp_path):
    """A dead run's owner file that lists a live run's daemons, from a directory
    whose name is a prefix of the live run's: the live daemons stay (processes
    are matched by their exact control socket, not by substring)."""
    pidns = os.stat("/proc/self/ns/pid").st_ino
    state = _private_dir(tmp_path / "state")
    live_dir = _private_dir(state / "sgv-ovs.abc")
    planted = _private_dir(state / "sgv-ovs.ab")
    live = [_fake_daemon(name, live_dir) for name in ("ovsdb-server", "ovs-vswitchd")]
    (live_dir / "owner").write_text(
        json.dumps({"pid": os.getpid(), "pidns": pidns, "daemons": [p.pid for p in live]})
    )
    (planted / "owner").write_text(
        json.dumps({"pid": _dead_pid(), "pidns": pidns, "daemons": [p.pid for p in live]})
    )
    try:
        removed = cleanup_stale(netns_dir=str(tmp_path / "no-netns"), tmpdir=str(state))
        assert removed == [str(planted)]
        time.sleep(0.2)
        assert all(p.poll() is None for p in live)
        assert live_dir.exists()
    finally:
        _stop(*live)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_cleanup_stale_ignores_what_another_user_planted(tmp_path):
    """An owner file or directory another user owns is never acted on, even
    when it names a daemon of ours exactly."""
    pidns = os.stat("/proc/self/ns/pid").st_ino
    state = _private_dir(tmp_path / "state")
    workdir = _private_dir(state / "sgv-ovs.mine")
    daemon = _fake_daemon("ovsdb-server", workdir)
    (workdir / "owner").write_text(json.dumps({"pid": _dead_pid(), "pidns": pidns, "daemons": [daemon.pid]}))
    os.chown(workdir / "owner", 65534, 65534)
    try:
        assert cleanup_stale(netns_dir=str(tmp_path / "no-netns"), tmpdir=str(state)) == []
        assert daemon.poll() is None and workdir.exists()
    finally:
        _stop(daemon)


@pytest.mark.parametrize("make", ["world-writable", "symlink", "file"])
def test_lab_state_dir_must_be_private(tmp_path, make):
    """The lab state directory is used only if it is a real directory of ours
    with mode 0700; otherwise the lab refuses to start, naming it."""
    path = tmp_path / "state"
    if make == "world-writable":
        path.mkdir()
        os.chmod(path, 0o777)
    elif make == "symlink":
        _private_dir(tmp_path / "elsewhere")
        path.symlink_to(tmp_path / "elsewhere")
    else:
        path.write_text("")
    with pytest.raises(EndpointError, match="unsafe") as err:
        lab_state_dir(str(path))
    assert str(path) in str(err.value)
    assert cleanup_stale(netns_dir=str(tmp_path / "no-netns"), tmpdir=str(path)) == []


def test_lab_state_for_root_lives_under_run():
    """Root's labs keep state where only root creates entries, never in /tmp."""
    assert LAB_STATE_DIR.startswith("/run/")
    if os.geteuid() == 0:
        path = lab_state_dir()
        st = os.lstat(path)
        assert path == LAB_STATE_DIR and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700


PLUGIN_CONFTEST = '''
import pytest
from scapy_geneve.conformance.endpoints import Endpoint
from scapy_geneve.conformance.vectors import Target

class Obs:
    def __init__(self, ep): self.ep = ep
    def drain(self): self.ep.out.clear()
    def wait_for(self, tag, timeout): return next((f for f in self.ep.out if tag in f), None)
    def close(self): pass

class Forwarder(Endpoint):
    """Decapsulates anything, checks nothing."""
    name = "forwarder"
    protocols = {"geneve"}
    def __init__(self): self.out = []
    def target(self, protocol): return Target()
    def send(self, frame): self.out.append(frame)
    def observer(self): return Obs(self)

@pytest.fixture(scope="session")
def tunnel_endpoint():
    yield Forwarder()
'''

PLUGIN_TEST = """
from scapy_geneve.pytest_plugin import assert_conformant

def test_rfc8926(tunnel_endpoint, conformance_vector):
    assert_conformant(tunnel_endpoint, conformance_vector)
"""


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    """The subprocess imports this checkout's scapy_geneve, whatever is installed."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=ROOT + (os.pathsep + path if path else ""))


def _plugin_args():
    """``-p scapy_geneve.pytest_plugin`` unless the pytest11 entry point already loads it."""
    from importlib.metadata import entry_points

    loaded = any(ep.value == "scapy_geneve.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if loaded else ["-p", "scapy_geneve.pytest_plugin"]


def test_pytest_plugin_turns_the_catalogue_into_tests(tmp_path):
    (tmp_path / "conftest.py").write_text(PLUGIN_CONFTEST)
    (tmp_path / "test_mine.py").write_text(PLUGIN_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *_plugin_args(),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            "--conformance-protocol",
            "geneve",
            "-W",
            "always",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=120,
        env=_env(),
    )
    out = res.stdout
    geneve = vectors(["geneve"])
    must_drop = [
        v for v in geneve if v.family == 4 and v.expect.delivers is False and v.level in ("MUST", "CONTROL")
    ]
    # the forwarder hands the frame over unchanged: where the spec requires a
    # changed inner frame (CE copied inward), that fails too
    must_change = [v for v in geneve if v.family == 4 and v.inner is not None and v.level == "MUST"]
    ipv6 = [v for v in geneve if v.family == 6]
    assert "%d failed" % (len(must_drop) + len(must_change)) in out, out[-3000:]
    assert "FAILED test_mine.py::test_rfc8926[geneve-ecn-ce-over-ect0]" in out
    assert "inner frame is not the one required" in out
    assert "%d skipped" % len(ipv6) in out, out[-3000:]
    assert "test_rfc8926[geneve-version-1]" in out
    assert "ConformanceDeviation" in out  # SHOULD-level drops warn
    assert res.returncode == 1


def test_pytest_plugin_without_an_endpoint_skips_with_the_reason(tmp_path):
    (tmp_path / "test_mine.py").write_text(PLUGIN_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *_plugin_args(),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "--conformance-level",
            "MUST",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=120,
        env=_env(),
    )
    assert "define a session-scoped `tunnel_endpoint` fixture" in res.stdout
    assert res.returncode == 0


BROKEN_CONFTEST = '''
import pytest
from scapy_geneve.conformance.endpoints import Endpoint, EndpointError
from scapy_geneve.conformance.vectors import Target

class Broken(Endpoint):
    """An interface that does not exist: nothing can be sent or observed."""
    name = "broken"
    protocols = {"geneve"}
    def target(self, protocol): return Target()
    def send(self, frame): raise EndpointError("no such interface: tap-nope")
    def observer(self): raise EndpointError("no such interface: tap-nope")

@pytest.fixture(scope="session")
def tunnel_endpoint():
    yield Broken()
'''


def test_pytest_plugin_reports_an_unusable_endpoint_once(tmp_path):
    """A wrong interface name is one failure of the run, not one per vector."""
    (tmp_path / "conftest.py").write_text(BROKEN_CONFTEST)
    (tmp_path / "test_mine.py").write_text(PLUGIN_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *_plugin_args(),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfs",
            "--conformance-protocol",
            "geneve",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=120,
        env=_env(),
    )
    out = res.stdout
    assert "1 failed" in out, out[-3000:]
    assert out.count("no such interface: tap-nope") >= 2  # the failure, then the skip reason
    assert "the endpoint under test cannot be used" in out and "Traceback" not in out
    assert res.returncode == 1
