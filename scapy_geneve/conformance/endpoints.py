"""Endpoints the conformance harness drives.

An endpoint is a tunnel endpoint under test plus two places to touch it: the
*underlay* interface where the harness injects encapsulated frames, and the
*overlay* interface where decapsulated inner frames come out.  Four kinds:

- :class:`InterfaceEndpoint`: your own device or software, reachable through
  interfaces you already have (optionally inside network namespaces).
- :class:`VethEndpoint`: your own software, attached to two veth pairs the
  harness creates (and deletes).
- :class:`OVSEndpoint`: Open vSwitch's userspace (netdev) datapath as a
  Geneve, VXLAN and GRE (NVGRE-format) endpoint, with a private
  ovsdb-server and ovs-vswitchd in network namespaces it creates.
- :class:`KernelVXLANEndpoint`: a Linux ``vxlan`` device in a namespace.

The last two need root, iproute2 (and OVS); they create everything they use
under a per-process name prefix and delete it all on :meth:`Endpoint.stop`
(also when used as a context manager).  Frames are sent and received with
AF_PACKET sockets opened inside the namespaces (``setns``), so no helper
process runs per packet.
"""

import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from scapy_geneve.capture.interrupt import shielded
from scapy_geneve.conformance.vectors import Target

__all__ = [
    "Endpoint",
    "InterfaceEndpoint",
    "VethEndpoint",
    "OVSEndpoint",
    "KernelVXLANEndpoint",
    "Observer",
    "EndpointError",
    "netns_socket",
    "ovs_available",
    "cleanup_stale",
    "lab_state_dir",
]

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class EndpointError(RuntimeError):
    """The endpoint could not be set up or driven (names the command that failed)."""


# -- namespaces and raw sockets ----------------------------------------------------


@contextlib.contextmanager
def _in_netns(netns: Optional[str]) -> Iterator[None]:
    """Run the block with this thread in network namespace NETNS (None: stay)."""
    if netns is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open("/var/run/netns/%s" % netns, os.O_RDONLY)
    except FileNotFoundError:
        os.close(own)
        raise EndpointError("network namespace %s does not exist" % netns) from None
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise EndpointError("setns(%s): %s" % (netns, os.strerror(err)))
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - cannot happen as root
                raise EndpointError("cannot return to the original network namespace")
    finally:
        os.close(target)
        os.close(own)


def netns_socket(iface: str, netns: Optional[str] = None, receive: bool = False) -> socket.socket:
    """An AF_PACKET socket bound to IFACE inside NETNS (the socket stays there).

    IFACE ``""`` with RECEIVE: not bound, every interface of the namespace."""
    if not iface and not receive:
        raise EndpointError("sending needs an interface")
    with _in_netns(netns):
        proto = ETH_P_ALL if receive else 0
        # socket() takes the protocol in network order; bind() converts it itself.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        try:
            if iface:
                sock.bind((iface, proto))
        except OSError as exc:
            sock.close()
            raise EndpointError(
                "cannot bind to %s%s: %s" % (iface, " in netns %s" % netns if netns else "", exc.strerror)
            ) from None
    if receive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setblocking(False)
    return sock


SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40


class Observer:
    """Frames arriving on one interface (incoming only), matched by a tag.

    The kernel hands AF_PACKET sockets 802.1Q tags out of band (VLAN
    offload); like libpcap, the observer puts them back into the frame from
    the PACKET_AUXDATA control message, so a tagged inner frame is seen tagged.
    """

    def __init__(self, iface: Union[str, Sequence[str]], netns: Optional[str] = None) -> None:
        names = [iface] if isinstance(iface, str) else list(iface)
        self.iface = names[0] if len(names) == 1 else ",".join(names)
        self.netns = netns
        # one interface: bound to it; several: bound to all, frames of the others ignored
        self.only: Optional[Set[str]] = None if len(names) == 1 else set(names)
        self.sock = netns_socket(names[0] if len(names) == 1 else "", netns, receive=True)
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self.seen: List[bytes] = []

    def drain(self) -> None:
        """Forget everything received so far."""
        self._read()
        self.seen.clear()

    def _read(self) -> None:
        while True:
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(20))
            except BlockingIOError:
                return
            if addr[2] == PACKET_OUTGOING or (self.only is not None and addr[0] not in self.only):
                continue
            for level, kind, cdata in ancdata:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                    status, _len, _snap, _mac, _net, tci, tpid = struct.unpack("=IIIHHHH", cdata[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        if not status & TP_STATUS_VLAN_TPID_VALID:
                            tpid = 0x8100
                        data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            self.seen.append(data)

    def wait_for(self, tag: bytes, timeout: float) -> Optional[bytes]:
        """The first frame containing TAG within TIMEOUT seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            for frame in self.seen:
                if tag in frame:
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.sock], [], [], left)

    def close(self) -> None:
        self.sock.close()


# -- commands -------------------------------------------------------------------


def _run(
    cmd: Sequence[str], env: Optional[Dict[str, str]] = None, check: bool = True, timeout: float = 30
) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    if check and res.returncode != 0:
        raise EndpointError(
            "%s: exit %d: %s" % (" ".join(cmd), res.returncode, (res.stderr or res.stdout).strip()[:500])
        )
    return res.stdout


def _wait_path(path: str, timeout: float = 10.0, log: Optional[str] = None) -> None:
    """Wait for a daemon's socket; on timeout, say so with the end of its log."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and os.path.exists(log):
                with open(log) as handle:
                    tail = ": " + " | ".join(handle.read().strip().splitlines()[-3:])
            raise EndpointError("timeout waiting for %s%s" % (path, tail))
        time.sleep(0.02)


def _mac(netns: str, iface: str) -> str:
    out = _run(["ip", "-n", netns, "-j", "link", "show", iface])
    return str(json.loads(out)[0]["address"])


def ovs_available() -> Optional[str]:
    """None when OVS userspace tools are installed, else the reason they are not."""
    for tool in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"):
        if shutil.which(tool) is None:
            return "%s not found (install openvswitch-switch)" % tool
    if not os.path.exists(OVSEndpoint.SCHEMA):
        return "%s not found" % OVSEndpoint.SCHEMA
    return None


# -- endpoints ----------------------------------------------------------------------


class Endpoint:
    """A tunnel endpoint the harness can inject into and observe.

    Subclasses set ``protocols`` (``{"geneve", "vxlan", "nvgre"}``),
    ``families`` (``{4}``/``{4, 6}``), and implement :meth:`target`,
    :meth:`send` and :meth:`observer`.  :meth:`prepare` runs before each
    vector (flush caches), :meth:`settle` after it (let counters catch up),
    :meth:`counters` returns a snapshot the harness diffs per vector.
    """

    name = "endpoint"
    protocols: Set[str] = set()
    families: Set[int] = {4}
    #: Seconds to wait for an inner frame after :meth:`settle` before calling
    #: the vector dropped.
    timeout = 0.5
    #: Why the endpoint cannot be used at all (set by the harness on the first
    #: EndpointError; later runs raise it again at once instead of retrying).
    unusable = ""

    def start(self) -> "Endpoint":
        return self

    def stop(self) -> None:
        pass

    def __enter__(self) -> "Endpoint":
        try:
            return self.start()
        except BaseException:
            with shielded():  # a signal during the teardown waits for its end
                self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        with shielded():
            self.stop()

    def target(self, protocol: str) -> Target:
        raise NotImplementedError

    def send(self, frame: bytes) -> None:
        raise NotImplementedError

    def observer(self) -> Observer:
        raise NotImplementedError

    def prepare(self) -> None:
        """Called before each vector."""

    def settle(self) -> None:
        """Called after each vector, before counters are read."""

    def counters(self) -> Dict[str, int]:
        return {}


class InterfaceEndpoint(Endpoint):
    """An endpoint reached through existing interfaces: yours.

    ``send_iface`` (in ``send_netns``) faces the endpoint's underlay port;
    inner frames come out on ``recv_iface`` (in ``recv_netns``).  ``target``
    gives the addresses the vectors use (endpoint MAC/IP, VNI, the host
    behind it), one per protocol or one for all.
    """

    def __init__(
        self,
        send_iface: str,
        recv_iface: str,
        target: Target,
        protocols: Sequence[str] = ("geneve",),
        families: Sequence[int] = (4,),
        send_netns: Optional[str] = None,
        recv_netns: Optional[str] = None,
        name: str = "endpoint",
        targets: Optional[Dict[str, Target]] = None,
    ) -> None:
        self.name = name
        self.send_iface, self.send_netns = send_iface, send_netns
        self.recv_iface, self.recv_netns = recv_iface, recv_netns
        self._target = target
        self._targets = targets or {}
        self.protocols = set(protocols)
        self.families = set(families)
        self._tx: Optional[socket.socket] = None

    def target(self, protocol: str) -> Target:
        return self._targets.get(protocol, self._target)

    def send(self, frame: bytes) -> None:
        if self._tx is None:
            self._tx = netns_socket(self.send_iface, self.send_netns)
        self._tx.send(frame)

    def observer(self) -> Observer:
        return Observer(self.recv_iface, self.recv_netns)

    def stop(self) -> None:
        if self._tx is not None:
            self._tx.close()
            self._tx = None


#: Namespaces this module makes are named ``sgvp<pidns>.<pid><tag>-<role>``:
#: the PID namespace and pid of the process that made them, so a later run
#: can tell leftovers of a killed run (pid no longer alive) from a run still
#: going; names from another PID namespace (a container sharing
#: /var/run/netns) are never judged, their pids mean nothing here.
NETNS_PREFIX = "sgvp"
_NETNS_RE = re.compile(r"^%s(\d+)\.(\d+)[a-z]-[\w-]+$" % NETNS_PREFIX)


def _pid_namespace() -> int:
    """The inode of this process's PID namespace (0 when unknown)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


#: Private OVS run directories: ``<lab state dir>/sgv-ovs.*`` with an ``owner`` file.
OVS_WORKDIR_PREFIX = "sgv-ovs."
#: Where labs keep their state: only root can create it (mode 0700, owner checked),
#: so nobody else can plant an ``owner`` file that a root run would act on.
LAB_STATE_DIR = "/run/scapy-geneve"
#: The daemons an OVS lab starts, by the control socket each is given.
OVS_DAEMONS = ("ovsdb-server", "ovs-vswitchd")
_OWNER_MAX = 4096
_stale_checked = False


def _pid_alive(pid: int) -> bool:
    return os.path.exists("/proc/%d" % pid)


def _check_private_dir(path: str) -> None:
    """PATH must be a real directory (not a symlink) owned by us, mode 0700."""
    st = os.lstat(path)
    problem = ""
    if not stat.S_ISDIR(st.st_mode):
        problem = "not a directory"
    elif st.st_uid != os.geteuid():
        problem = "owned by uid %d, not %d" % (st.st_uid, os.geteuid())
    elif st.st_mode & 0o077:
        problem = "mode %04o lets others in" % stat.S_IMODE(st.st_mode)
    if problem:
        raise EndpointError("lab state directory %s is unsafe (%s): remove it" % (path, problem))


def lab_state_dir(base: Optional[str] = None) -> str:
    """The private directory labs keep their state in, created if missing.

    Root: :data:`LAB_STATE_DIR` (under /run, where only root creates entries);
    anyone else: ``<tmp>/scapy-geneve-<uid>``.  Either way it must be a real
    directory owned by this user with mode 0700, or :class:`EndpointError`.
    """
    if base is None:
        base = (
            LAB_STATE_DIR
            if os.geteuid() == 0
            else os.path.join(tempfile.gettempdir(), "scapy-geneve-%d" % os.geteuid())
        )
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise EndpointError("cannot create the lab state directory %s: %s" % (base, exc.strerror)) from None
    _check_private_dir(base)
    return base


class _Owner(NamedTuple):
    """A lab's ``owner`` file: who started it, in which PID namespace, its daemons."""

    pid: int
    pidns: int
    daemons: Tuple[int, ...]


def _read_owner(workdir: str) -> Optional[_Owner]:
    """WORKDIR's owner file if it is ours and well formed, else None (never raises)."""
    path = os.path.join(workdir, "owner")
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > _OWNER_MAX:
            return None
        with open(path, "rb") as handle:
            data = json.loads(handle.read(_OWNER_MAX))
    except (OSError, ValueError, RecursionError):
        return None  # being created, gone, or not ours
    if not isinstance(data, dict):
        return None
    pid, pidns, daemons = data.get("pid"), data.get("pidns"), data.get("daemons")

    def is_pid(v: object) -> bool:
        return type(v) is int and 0 < v < (1 << 22)  # noqa: E721 (bool is not a pid)

    if (
        not isinstance(pid, int)
        or not is_pid(pid)
        or type(pidns) is not int
        or not isinstance(daemons, list)
        or not all(is_pid(d) for d in daemons)
    ):
        return None
    return _Owner(pid, pidns, tuple(daemons))


def _is_lab_daemon(pid: int, workdir: str) -> bool:
    """True only for an OVS daemon this user started for WORKDIR: its program is
    ovsdb-server or ovs-vswitchd and one argument is exactly that daemon's
    control socket in WORKDIR (no substring match, so another run's daemons,
    whose directory merely starts with the same characters, never qualify)."""
    try:
        if os.stat("/proc/%d" % pid).st_uid != os.geteuid():
            return False
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    name = os.path.basename(argv[0]).decode(errors="replace") if argv else ""
    if name not in OVS_DAEMONS:
        return False
    return ("--unixctl=%s/run/%s.ctl" % (workdir, name)).encode() in argv


def _stale_workdirs(state_dir: str) -> List[Tuple[str, _Owner]]:
    """The OVS run directories in STATE_DIR whose owner has gone (same PID namespace)."""
    try:
        names = [d for d in os.listdir(state_dir) if d.startswith(OVS_WORKDIR_PREFIX)]
    except OSError:
        return []
    out = []
    for name in names:
        workdir = os.path.join(state_dir, name)
        try:
            _check_private_dir(workdir)
        except (OSError, EndpointError):
            continue  # not one we made
        owner = _read_owner(workdir)
        if owner is None or owner.pidns != _pid_namespace() or _pid_alive(owner.pid):
            continue  # alive, unreadable, or another PID namespace's
        out.append((workdir, owner))
    return out


def cleanup_stale(netns_dir: str = "/var/run/netns", tmpdir: Optional[str] = None) -> List[str]:
    """Delete what endpoints of dead processes left behind (a ``kill -9``
    skips :meth:`Endpoint.stop`): ``sgvp<pidns>.<pid>*`` network namespaces
    of this PID namespace whose pid is gone, and private OVS run directories
    (in the lab state directory TMPDIR, default :func:`lab_state_dir`) whose
    owner is gone, after ending the daemons they record -- only processes of
    this user that are exactly that directory's ovsdb-server/ovs-vswitchd.
    What it reads is validated (an entry that is not a private directory of
    ours with a well-formed owner file is left alone).  Returns what was removed.
    Runs once per process before the first lab."""
    removed: List[str] = []
    try:
        state_dir = lab_state_dir(tmpdir)
    except EndpointError:
        state_dir = ""
    for workdir, owner in _stale_workdirs(state_dir) if state_dir else []:
        for pid in owner.daemons:
            if _is_lab_daemon(pid, workdir):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(workdir)
    removed += _stale_namespaces(netns_dir)
    return removed


def _stale_namespaces(netns_dir: str) -> List[str]:
    removed: List[str] = []
    try:
        names = os.listdir(netns_dir)
    except OSError:
        names = []
    pidns = _pid_namespace()
    for name in names:
        m = _NETNS_RE.match(name)
        if m and pidns and int(m.group(1)) == pidns and not _pid_alive(int(m.group(2))):
            _run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    return removed


class _NetnsLab:
    """Namespaces with a per-process prefix; all deleted by cleanup()."""

    def __init__(self, tag: str) -> None:
        global _stale_checked
        if not _stale_checked:
            _stale_checked = True
            cleanup_stale()
        self.prefix = "%s%d.%d%s" % (NETNS_PREFIX, _pid_namespace(), os.getpid(), tag)
        self.made: List[str] = []

    def ns(self, suffix: str) -> str:
        return "%s-%s" % (self.prefix, suffix)

    def add(self, suffix: str, ipv6: bool = False) -> str:
        name = self.ns(suffix)
        _run(["ip", "netns", "del", name], check=False)  # stale, from a killed run with this pid
        _run(["ip", "netns", "add", name])
        self.made.append(name)
        flag = "0" if ipv6 else "1"  # no IPv6 chatter (RS, MLD) where it is not used
        _run(
            [
                "ip",
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=" + flag,
                "net.ipv6.conf.default.disable_ipv6=" + flag,
            ]
        )
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def cleanup(self) -> None:
        for name in reversed(self.made):
            _run(["ip", "netns", "del", name], check=False)
        self.made.clear()


def _tunnel_port(port: str, kind: str, remote: str, key: str) -> List[str]:
    """ovs-vsctl arguments adding tunnel PORT of OVS type KIND to br-int, towards REMOTE with KEY."""
    return [
        "--",
        "add-port",
        "br-int",
        port,
        "--",
        "set",
        "interface",
        port,
        "type=" + kind,
        "options:remote_ip=" + remote,
        "options:key=" + key,
    ]


class OVSEndpoint(InterfaceEndpoint):
    """Open vSwitch (userspace datapath) as Geneve, VXLAN and NVGRE endpoint.

    Topology (all namespaces created here)::

        <p>-vm  vp 192.168.50.1 ==veth== vo [br-int: gnv0 vx0 gre0 gnv6 vx6] <p>-ovs
                                            [br-u: uo, internal br-u 10.99.0.1, fd00:99::1]
        <p>-peer ulp 10.99.0.2, fd00:99::2 ==veth== uo

    The harness injects on ``ulp`` and watches ``vp``.  OpenFlow: traffic from
    each tunnel port goes to ``vo``; everything else is dropped.  The TLV map
    makes ``KNOWN_OPTION`` (class 0xffff, type 0x80, 4 bytes) understood.
    Tunnel keys: Geneve/VXLAN VNI 5000, GRE key 0x00abcd5a (VSID 0xabcd,
    FlowID 0x5a).  ``gnv6`` and ``vx6`` are Geneve and VXLAN ports over the
    IPv6 underlay (``ipv6=False`` leaves them out).  Follows the lab recipe: OVS_RUNDIR in vswitchd's
    environment, no ``--detach`` (children reaped here), ``ethtool -K vp tx
    off``, ``revalidator/purge`` before every vector.
    """

    SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
    timeout = 0.15  # after revalidator/wait the upcall has been executed
    PORTS = {"geneve": "gnv0", "vxlan": "vx0", "nvgre": "gre0"}
    PORTS6 = {"geneve": "gnv6", "vxlan": "vx6"}  # over the IPv6 underlay
    PORT6 = PORTS6["geneve"]
    COVERAGE = (
        "datapath_drop_tunnel_pop_error",
        "drop_action_invalid_tunnel_metadata",
        "datapath_drop_upcall_error",
        "drop_action_of_pipeline",
        "datapath_drop_invalid_port",
        "datapath_drop_lock_error",
        "drop_action_no_space",
        "datapath_drop_sample_error",
    )

    def __init__(
        self,
        protocols: Sequence[str] = ("geneve", "vxlan", "nvgre"),
        vni: int = 5000,
        vsid: int = 0xABCD,
        flowid: int = 0x5A,
        exact_counters: bool = False,
        ipv6: bool = True,
    ) -> None:
        unknown = set(protocols) - set(self.PORTS)
        if unknown:
            raise ValueError("OVS endpoint supports %s, not %s" % (sorted(self.PORTS), sorted(unknown)))
        self.lab = _NetnsLab("o")
        self.ns_ovs, self.ns_peer, self.ns_vm = (self.lab.ns(s) for s in ("ovs", "peer", "vm"))
        v6 = ipv6 and bool(set(protocols) & set(self.PORTS6))
        super().__init__(
            "ulp",
            "vp",
            Target(vni=vni, vsid=vsid, flowid=flowid),
            protocols,
            (4, 6) if v6 else (4,),
            self.ns_peer,
            self.ns_vm,
            name="ovs",
        )
        self.vni, self.vsid, self.flowid = vni, vsid, flowid
        self.exact_counters = exact_counters
        self.workdir: Optional[str] = None
        self.procs: List["subprocess.Popen[bytes]"] = []
        self.env: Dict[str, str] = {}
        self.version = ""

    # -- plumbing ---------------------------------------------------------
    def vsctl(self, *args: str) -> str:
        return _run(
            ["ovs-vsctl", "--db=unix:%s/run/db.sock" % self.workdir, "--timeout=20"] + list(args),
            env=self.env,
        )

    def ofctl(self, *args: str) -> str:
        return _run(["ovs-ofctl"] + list(args), env=self.env)

    def appctl(self, *args: str, check: bool = True) -> str:
        return _run(
            ["ovs-appctl", "-t", "%s/run/ovs-vswitchd.ctl" % self.workdir] + list(args),
            env=self.env,
            check=check,
        )

    def _record_owner(self) -> None:
        """Who started the daemons: read by cleanup_stale() after a kill -9."""
        tmp = "%s/owner.tmp" % self.workdir
        with open(tmp, "w") as handle:
            json.dump(
                {"pid": os.getpid(), "pidns": _pid_namespace(), "daemons": [p.pid for p in self.procs]},
                handle,
            )
        os.replace(tmp, "%s/owner" % self.workdir)

    def start(self) -> "OVSEndpoint":
        reason = ovs_available()
        if reason:
            raise EndpointError(reason)
        self.workdir = tempfile.mkdtemp(prefix=OVS_WORKDIR_PREFIX, dir=lab_state_dir())
        w = self.workdir
        for sub in ("run", "log", "db"):
            os.mkdir(os.path.join(w, sub))
        self.env = dict(os.environ, OVS_RUNDIR=w + "/run", OVS_LOGDIR=w + "/log", OVS_DBDIR=w + "/db")
        self.version = _run(["ovs-vswitchd", "--version"]).splitlines()[0]
        v6 = 6 in self.families
        no, np_, nv = self.lab.add("ovs", v6), self.lab.add("peer", v6), self.lab.add("vm")
        _run(["ip", "link", "add", "uo", "netns", no, "type", "veth", "peer", "name", "ulp", "netns", np_])
        _run(["ip", "link", "add", "vo", "netns", no, "type", "veth", "peer", "name", "vp", "netns", nv])
        for ns, dev in ((no, "uo"), (no, "vo"), (np_, "ulp")):
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        _run(["ip", "-n", np_, "addr", "add", "10.99.0.2/24", "dev", "ulp"])
        t = self._target
        if v6:
            _run(["ip", "-n", np_, "addr", "add", t.src_ip6 + "/64", "dev", "ulp", "nodad"])
        _run(["ip", "-n", nv, "link", "set", "vp", "address", t.inner_dst_mac])
        _run(["ip", "-n", nv, "link", "set", "vp", "up"])
        _run(["ip", "-n", nv, "addr", "add", t.inner_dst_ip + "/24", "dev", "vp"])
        # OVS netdev ports get no vnet header: unfinished (CHECKSUM_PARTIAL) checksums otherwise.
        _run(["ip", "netns", "exec", nv, "ethtool", "-K", "vp", "tx", "off"])

        _run(["ovsdb-tool", "create", w + "/db/conf.db", self.SCHEMA])
        self.procs.append(
            subprocess.Popen(
                [
                    "ovsdb-server",
                    w + "/db/conf.db",
                    "--remote=punix:%s/run/db.sock" % w,
                    "--unixctl=%s/run/ovsdb-server.ctl" % w,
                    "--log-file=%s/log/ovsdb-server.log" % w,
                    "-vconsole:off",
                    "--no-chdir",
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self._record_owner()
        _wait_path(w + "/run/db.sock", log=w + "/log/ovsdb-server.log")
        self.vsctl("--no-wait", "init")
        self.procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    no,
                    "env",
                    "OVS_RUNDIR=%s/run" % w,
                    "ovs-vswitchd",
                    "unix:%s/run/db.sock" % w,
                    "--unixctl=%s/run/ovs-vswitchd.ctl" % w,
                    "--log-file=%s/log/ovs-vswitchd.log" % w,
                    "-vconsole:off",
                    "--no-chdir",
                ],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self._record_owner()
        _wait_path(w + "/run/ovs-vswitchd.ctl", log=w + "/log/ovs-vswitchd.log")

        self.vsctl(
            "add-br",
            "br-u",
            "--",
            "set",
            "bridge",
            "br-u",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-u",
            "uo",
        )
        ports: List[str] = []
        for proto in sorted(self.protocols):
            port = self.PORTS[proto]
            kind = {"geneve": "geneve", "vxlan": "vxlan", "nvgre": "gre"}[proto]
            key = str(self.vni) if proto != "nvgre" else "0x%x" % (self.vsid << 8 | self.flowid)
            ports += _tunnel_port(port, kind, "10.99.0.2", key)
        ports6 = [self.PORTS6[p] for p in sorted(self.protocols) if p in self.PORTS6] if v6 else []
        for port in ports6:
            kind = "geneve" if port == self.PORTS6["geneve"] else "vxlan"
            ports += _tunnel_port(port, kind, t.src_ip6, str(self.vni))
        self.vsctl(
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-int",
            "vo",
            *ports,
        )
        _run(["ip", "-n", no, "addr", "add", "10.99.0.1/24", "dev", "br-u"])
        _run(["ip", "-n", no, "link", "set", "br-u", "up"])
        peer_mac = _mac(np_, "ulp")
        self.appctl("tnl/arp/set", "br-u", "10.99.0.2", peer_mac)
        deadline = time.monotonic() + 10
        while "10.99.0.0/24 dev br-u" not in self.appctl("ovs/route/show"):
            if time.monotonic() > deadline:
                self.appctl("ovs/route/add", "10.99.0.2/32", "br-u")
                break
            time.sleep(0.05)
        if v6:
            _run(["ip", "-n", no, "addr", "add", t.dst_ip6 + "/64", "dev", "br-u", "nodad"])
            self.appctl("tnl/neigh/set", "br-u", t.src_ip6, peer_mac)
            deadline = time.monotonic() + 10
            while "fd00:99::/64 dev br-u" not in self.appctl("ovs/route/show"):
                if time.monotonic() > deadline:
                    self.appctl("ovs/route/add", t.src_ip6 + "/128", "br-u")
                    break
                time.sleep(0.05)

        if "geneve" in self.protocols:
            cls, typ, data = t.known_option
            self.ofctl(
                "add-tlv-map",
                "br-int",
                "{class=0x%x,type=0x%x,len=%d}->tun_metadata0" % (cls, typ, len(data)),
            )
        self.ofctl("del-flows", "br-int")
        for port in [self.PORTS[p] for p in sorted(self.protocols)] + ports6:
            self.ofctl("add-flow", "br-int", "priority=100,in_port=%s,actions=output:vo" % port)
        self.ofctl("add-flow", "br-int", "priority=1,actions=drop")
        self.br_u_mac = _mac(no, "br-u")
        self.peer_mac = peer_mac
        self._target = Target(
            src_mac=peer_mac,
            dst_mac=self.br_u_mac,
            src_ip="10.99.0.2",
            dst_ip="10.99.0.1",
            vni=self.vni,
            vsid=self.vsid,
            flowid=self.flowid,
            inner_src_mac=t.inner_src_mac,
            inner_dst_mac=t.inner_dst_mac,
            inner_src_ip=t.inner_src_ip,
            inner_dst_ip=t.inner_dst_ip,
        )
        return self

    def prepare(self) -> None:
        # Megaflows installed for an earlier vector (e.g. a broad geneve({}{})
        # drop) would swallow the next one without an upcall.
        self.appctl("revalidator/purge")

    def settle(self) -> None:
        # OpenFlow stats of an upcalled packet are credited during the upcall,
        # so flow counters are exact without waiting.  Coverage (drop-reason)
        # counters are summed about once a second: exact_counters waits for a
        # revalidation round (about 0.5 s per vector).
        if self.exact_counters:
            self.appctl("revalidator/wait")

    def counters(self) -> Dict[str, int]:
        """OpenFlow per-flow packet counts (``flow:<in_port>``, ``flow:prio<N>``)
        and the coverage counters of OVS's drop reasons."""
        out: Dict[str, int] = {}
        for line in self.ofctl("--names", "dump-flows", "br-int").splitlines():
            m = re.search(r"n_packets=(\d+).*priority=(\d+)(?:,in_port=\"?([\w-]+))?", line)
            if m:
                out["flow:%s" % (m.group(3) or "prio%s" % m.group(2))] = int(m.group(1))
        for name in self.COVERAGE:
            out[name] = 0
        for line in self.appctl("coverage/show").splitlines():
            m = re.match(r"(\w+)\s+.*total:\s+(\d+)", line)
            if m and m.group(1) in self.COVERAGE:
                out[m.group(1)] = int(m.group(2))
        return out

    def log(self) -> str:
        """ovs-vswitchd's log so far (for evidence)."""
        try:
            with open("%s/log/ovs-vswitchd.log" % self.workdir) as handle:
                return handle.read()
        except (OSError, TypeError):
            return ""

    def stop(self) -> None:
        super().stop()
        w = self.workdir
        if w is not None and len(self.procs) > 1 and self.procs[1].poll() is None:
            _run(
                ["ovs-appctl", "-t", w + "/run/ovs-vswitchd.ctl", "exit", "--cleanup"],
                env=self.env,
                check=False,
                timeout=10,
            )
        if w is not None and self.procs and self.procs[0].poll() is None:
            _run(
                ["ovs-appctl", "-t", w + "/run/ovsdb-server.ctl", "exit"],
                env=self.env,
                check=False,
                timeout=10,
            )
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self.lab.cleanup()
        if w is not None:
            shutil.rmtree(w, ignore_errors=True)
            self.workdir = None


class VethEndpoint(InterfaceEndpoint):
    """The harness makes the wires, you bring the endpoint.

    Two veth pairs: the harness keeps one end of each in a namespace of its
    own (``hu`` faces your endpoint's underlay port, ``ho`` its overlay
    port) and hands you the other ends, ``dut_underlay`` and ``dut_overlay``,
    in ``dut_netns`` (an existing namespace; None: the namespace you run in).
    Attach your endpoint (a process, a bridge, a DPDK ``net_af_packet``
    port…) to them between :meth:`start` and :func:`run_vectors`.
    ``dut_underlay`` gets the MAC address of ``target.dst_mac``; the vectors
    are addressed with ``target``.  :meth:`stop` deletes both pairs.
    """

    def __init__(
        self,
        target: Target,
        protocols: Sequence[str] = ("geneve",),
        families: Sequence[int] = (4,),
        dut_underlay: Optional[str] = None,
        dut_overlay: Optional[str] = None,
        dut_netns: Optional[str] = None,
        name: str = "veth",
    ) -> None:
        self.lab = _NetnsLab("v")
        self.ns_harness = self.lab.ns("h")
        pid = os.getpid()
        self.dut_underlay = dut_underlay or "sgv%du" % pid
        self.dut_overlay = dut_overlay or "sgv%do" % pid
        self.dut_netns = dut_netns
        for dev in (self.dut_underlay, self.dut_overlay):
            if len(dev) > 15:
                raise ValueError("interface name %r is longer than 15 characters" % dev)
        super().__init__("hu", "ho", target, protocols, families, self.ns_harness, self.ns_harness, name=name)

    def start(self) -> "VethEndpoint":
        ns = self.lab.add("h", 6 in self.families)
        where = ["netns", self.dut_netns] if self.dut_netns else []
        for mine, theirs in (("hu", self.dut_underlay), ("ho", self.dut_overlay)):
            _run(["ip", "link", "add", mine, "netns", ns, "type", "veth", "peer", "name", theirs, *where])
            _run(["ip", "-n", ns, "link", "set", mine, "up"])
        dut = ["ip", "-n", self.dut_netns] if self.dut_netns else ["ip"]
        _run(dut + ["link", "set", self.dut_underlay, "address", self._target.dst_mac])
        for dev in (self.dut_underlay, self.dut_overlay):
            _run(dut + ["link", "set", dev, "up"])
        return self

    def stop(self) -> None:
        super().stop()
        self.lab.cleanup()  # deleting the namespace deletes both pairs, the DUT's ends with them


class KernelVXLANEndpoint(InterfaceEndpoint):
    """The Linux kernel's ``vxlan`` device as a VXLAN endpoint.

    Topology: ``<p>-kpeer`` (kp 10.98.0.2, fd00:98::2) ==veth== ``<p>-kdut``
    (ka 10.98.0.1, fd00:98::1; ``vx0``: VNI 5000, dstport 4789, 192.168.50.1;
    ``vx6``: the same over IPv6, ``ipv6=False`` leaves it out).  The harness
    injects on ``kp`` and watches ``vx0``/``vx6`` themselves: a frame the
    vxlan driver accepts is received on the device.  ``ethtool -K ka rx off`` makes the
    receiving stack verify UDP checksums in software, as behind a NIC
    without receive checksum offload (a veth would otherwise mark the
    injected frames as already verified).  ``udp_csum_rx``: keep that
    (True) or trust the veth (False).
    """

    def __init__(
        self,
        vni: int = 5000,
        port: int = 4789,
        udp_csum_rx: bool = True,
        extra_args: Sequence[str] = (),
        ipv6: bool = True,
    ) -> None:
        self.lab = _NetnsLab("k")
        self.ns_dut, self.ns_peer = self.lab.ns("dut"), self.lab.ns("peer")
        super().__init__(
            "kp",
            "vx0",
            Target(vni=vni, vxlan_port=port, src_ip6="fd00:98::2", dst_ip6="fd00:98::1"),
            ("vxlan",),
            (4, 6) if ipv6 else (4,),
            self.ns_peer,
            self.ns_dut,
            name="linux-vxlan",
        )
        self.vni, self.port, self.udp_csum_rx = vni, port, udp_csum_rx
        self.extra_args = list(extra_args)
        self.kernel = os.uname().release
        self.timeout = 0.1  # the kernel decapsulates synchronously in the sender's softirq

    def start(self) -> "KernelVXLANEndpoint":
        v6 = 6 in self.families
        nd, np_ = self.lab.add("dut", v6), self.lab.add("peer", v6)
        _run(["ip", "link", "add", "ka", "netns", nd, "type", "veth", "peer", "name", "kp", "netns", np_])
        _run(["ip", "-n", nd, "addr", "add", "10.98.0.1/24", "dev", "ka"])
        _run(["ip", "-n", np_, "addr", "add", "10.98.0.2/24", "dev", "kp"])
        _run(["ip", "-n", nd, "link", "set", "ka", "up"])
        _run(["ip", "-n", np_, "link", "set", "kp", "up"])
        if self.udp_csum_rx:
            _run(["ip", "netns", "exec", nd, "ethtool", "-K", "ka", "rx", "off"])
        t = self._target
        _run(
            [
                "ip",
                "-n",
                nd,
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                str(self.vni),
                "local",
                "10.98.0.1",
                "remote",
                "10.98.0.2",
                "dstport",
                str(self.port),
                "dev",
                "ka",
                *self.extra_args,
            ]
        )
        _run(["ip", "-n", nd, "link", "set", "vx0", "address", t.inner_dst_mac])
        _run(["ip", "-n", nd, "addr", "add", t.inner_dst_ip + "/24", "dev", "vx0"])
        _run(["ip", "-n", nd, "link", "set", "vx0", "up"])
        if v6:
            # vx6: the same VNI over the IPv6 underlay (one device per address family)
            _run(["ip", "-n", nd, "addr", "add", t.dst_ip6 + "/64", "dev", "ka", "nodad"])
            _run(["ip", "-n", np_, "addr", "add", t.src_ip6 + "/64", "dev", "kp", "nodad"])
            _run(
                [
                    "ip",
                    "-n",
                    nd,
                    "link",
                    "add",
                    "vx6",
                    "type",
                    "vxlan",
                    "id",
                    str(self.vni),
                    "local",
                    t.dst_ip6,
                    "remote",
                    t.src_ip6,
                    "dstport",
                    str(self.port),
                    "dev",
                    "ka",
                    *self.extra_args,
                ]
            )
            _run(["ip", "-n", nd, "link", "set", "vx6", "address", t.inner_dst_mac])
            _run(["ip", "-n", nd, "link", "set", "vx6", "up"])
        self._target = Target(
            src_mac=_mac(np_, "kp"),
            dst_mac=_mac(nd, "ka"),
            src_ip="10.98.0.2",
            dst_ip="10.98.0.1",
            src_ip6=t.src_ip6,
            dst_ip6=t.dst_ip6,
            vni=self.vni,
            vxlan_port=self.port,
            inner_src_mac=t.inner_src_mac,
            inner_dst_mac=t.inner_dst_mac,
            inner_src_ip=t.inner_src_ip,
            inner_dst_ip=t.inner_dst_ip,
        )
        return self

    def observer(self) -> Observer:
        return Observer(["vx0", "vx6"] if 6 in self.families else "vx0", self.ns_dut)

    def counters(self) -> Dict[str, int]:
        """rx statistics of vx0 (and vx6), and the UDP (and UDP6) MIB of the namespace."""
        out: Dict[str, int] = {}
        for dev in ("vx0", "vx6") if 6 in self.families else ("vx0",):
            info = json.loads(_run(["ip", "-n", self.ns_dut, "-s", "-s", "-j", "link", "show", dev]))[0]
            for key, val in info.get("stats64", {}).get("rx", {}).items():
                if isinstance(val, int):
                    out["%s.rx_%s" % (dev, key)] = val
        snmp = _run(["ip", "netns", "exec", self.ns_dut, "cat", "/proc/net/snmp"])
        heads: List[str] = []
        for line in snmp.splitlines():
            if line.startswith("Udp:"):
                if not heads:
                    heads = line.split()[1:]
                else:
                    for name, val in zip(heads, line.split()[1:]):
                        out["Udp." + name] = int(val)
        if 6 in self.families:
            snmp6 = _run(["ip", "netns", "exec", self.ns_dut, "cat", "/proc/net/snmp6"])
            for line in snmp6.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0].startswith("Udp6"):
                    out[parts[0].replace("Udp6", "Udp6.")] = int(parts[1])
        return out

    def stop(self) -> None:
        super().stop()
        self.lab.cleanup()


def _describe(endpoint: Endpoint) -> Tuple[str, str]:
    """(name, version string) for reports."""
    version = getattr(endpoint, "version", "") or getattr(endpoint, "kernel", "")
    return endpoint.name, str(version)
