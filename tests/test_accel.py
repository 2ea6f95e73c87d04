"""The compiled record walks (capture/_walk.c) equal their Python twins (capture/accel.py).

Each walk appends the start offsets of the records (pcap) or Enhanced Packet
Blocks (pcapng) it finds and returns where it stopped.  Hypothesis builds
buffers of plausible records and damages them (absurd lengths, cut tails, junk);
the compiled walk and the Python walk must find the same starts and stop at the
same offset, in both byte orders.  Then whole captures: the readers give the
same records, blocks and errors with either walk, at any chunk size.

CI builds the compiled walks (setup.py; gcc and the Python headers are there),
so there these tests never skip; on a machine without a compiler they skip,
saying so, and the readers run the Python walks.
"""

import io
import os
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import numpy as np

from scapy_geneve.capture import accel, pcap, pcapng
from scapy_geneve.capture.formats import MAX_BLOCK_LEN
from scapy_geneve.capture.pcapio import Batch, PcapngWriter, PcapWriter
from scapy_geneve.capture.scan_batch import pcap_stamps_and_lengths, words

from .test_scan_fuzz import _walk as read_capture  # records, blocks and the error, as read

compiled = accel.compiled_module()
pytestmark = pytest.mark.skipif(
    compiled is None and not os.environ.get("CI"),
    reason="the compiled walks are not built here (no C compiler at install): the Python walks run",
)

WALKS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_ci_builds_the_compiled_walks() -> None:
    """In CI the extension must be there: otherwise these tests compare Python with itself."""
    assert compiled is not None, "scapy_geneve/capture/_walk.c was not built (setup.py, optional extension)"
    assert accel.COMPILED and accel.pcap_walk is not accel.py_pcap_walk


# -- pcap records ------------------------------------------------------------------------
#    ts_sec (4) | ts_frac (4) | incl_len (4) | orig_len (4) | incl_len bytes of data
def pcap_record(big: bool, incl: int, data_len: int, sec: int = 1, frac: int = 2, orig: int = -1) -> bytes:
    """A record header claiming INCL captured bytes, followed by DATA_LEN bytes."""
    head = struct.pack(">IIII" if big else "<IIII", sec, frac, incl, incl if orig < 0 else orig)
    return head + b"\xab" * data_len


@st.composite
def pcap_buffers(draw: Any) -> Tuple[bytes, bool]:
    big = draw(st.booleans())
    parts: List[bytes] = []
    for _ in range(draw(st.integers(0, 12))):
        incl = draw(st.one_of(st.integers(0, 80), st.sampled_from([0xFFFFFFFF, 1 << 31, 70000])))
        # usually honest; sometimes the bytes are cut or there are more than claimed
        data_len = draw(st.one_of(st.just(min(incl, 80)), st.integers(0, 90)))
        sec, frac, orig = (draw(st.integers(0, 0xFFFFFFFF)) for _ in range(3))
        parts.append(pcap_record(big, incl, data_len, sec, frac, orig))
    buf = b"".join(parts) + draw(st.binary(max_size=20))
    cut = draw(st.integers(0, len(buf)))
    return buf[:cut] if draw(st.booleans()) else buf, big


@WALKS
@given(case=pcap_buffers(), ts_mult=st.sampled_from([1, 1000]))
@example(case=(b"", False), ts_mult=1000)
@example(case=(pcap_record(False, 4, 4), False), ts_mult=1000)  # one whole record: stops at its end
@example(case=(pcap_record(True, 4, 4)[:19], True), ts_mult=1)  # the only record is cut: nothing, stops at 0
@example(case=(pcap_record(False, 0xFFFFFFFF, 0) * 2, False), ts_mult=1)  # absurd length: left to _cut_absurd
@example(case=(b"\x00" * 15, True), ts_mult=1000)  # less than a record header
@example(
    case=(pcap_record(True, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), True), ts_mult=1000
)  # widest fields
def test_pcap_walk_equals_the_python_walk(case: Tuple[bytes, bool], ts_mult: int) -> None:
    buf, big = case
    c_starts, py_starts = array("q"), array("q")
    c_pos, heads = accel._c_pcap_walk(buf, big, ts_mult, c_starts)
    py_pos, none = accel.py_pcap_walk(buf, big, ts_mult, py_starts)
    assert c_starts.tolist() == py_starts.tolist()
    assert c_pos == py_pos
    assert none is None and heads is not None
    # the timestamps and original lengths read on the way equal numpy's gathers
    endian = ">" if big else "<"
    batch = Batch(None, buf, 0, 1, c_starts, endian, pcap_linktype=1, ts_mult=ts_mult)
    starts = np.frombuffer(c_starts, dtype=np.int64)
    ts_ns, wirelen = pcap_stamps_and_lengths(np, batch, starts, words(np, buf, endian + "u4"))
    assert np.frombuffer(heads[0], dtype=np.int64).tolist() == ts_ns.tolist()
    assert np.frombuffer(heads[1], dtype=np.int64).tolist() == wirelen.tolist()


def test_pcap_walk_reads_any_buffer() -> None:
    """bytes, bytearray and memoryview are all read (the reader hands out a bytearray)."""
    buf = pcap_record(False, 3, 3) * 3
    for kind in (bytes, bytearray, memoryview):
        starts = array("q")
        assert accel._c_pcap_walk(kind(buf), False, 1, starts)[0] == len(buf)  # type: ignore[arg-type]
        assert starts.tolist() == [0, 19, 38]


# -- pcapng Enhanced Packet Blocks -------------------------------------------------------
#    Block Type = 6 (4) | Block Total Length (4) | ... | Block Total Length (4)
def epb(big: bool, btype: int, blen: int, body: int) -> bytes:
    return struct.pack(">II" if big else "<II", btype, blen) + b"\x00" * body


@st.composite
def epb_buffers(draw: Any) -> Tuple[bytes, int, bool, int]:
    big = draw(st.booleans())
    parts: List[bytes] = []
    for _ in range(draw(st.integers(0, 10))):
        btype = draw(st.sampled_from([6, 6, 6, 1, 3, 0x0A0D0D0A]))
        blen = draw(st.one_of(st.sampled_from([32, 36, 64]), st.integers(0, 100)))
        body = draw(st.one_of(st.just(max(0, blen - 8)), st.integers(0, 100)))
        parts.append(epb(big, btype, blen, body))
    buf = b"".join(parts) + draw(st.binary(max_size=16))
    pos = draw(st.integers(0, len(buf) + 4))
    max_len = draw(st.sampled_from([MAX_BLOCK_LEN, 36, 64]))
    return buf, pos, big, max_len


@WALKS
@given(case=epb_buffers())
@example(case=(epb(False, 6, 32, 24) * 3, 0, False, MAX_BLOCK_LEN))  # a run of three
@example(case=(epb(True, 6, 34, 26), 0, True, MAX_BLOCK_LEN))  # length not a multiple of 4
@example(case=(epb(False, 6, 64, 24), 0, False, MAX_BLOCK_LEN))  # incomplete
@example(case=(epb(False, 6, 28, 20), 0, False, MAX_BLOCK_LEN))  # under 32 bytes
@example(case=(epb(False, 6, 64, 56), 0, False, 36))  # over the limit
@example(case=(epb(False, 3, 32, 24), 0, False, MAX_BLOCK_LEN))  # a Simple Packet Block ends the run
def test_epb_run_equals_the_python_run(case: Tuple[bytes, int, bool, int]) -> None:
    buf, pos, big, max_len = case
    c_starts, py_starts = array("q"), array("q")
    c_stop = accel._c_epb_run(buf, pos, big, max_len, c_starts)
    py_stop = accel.py_epb_run(buf, pos, big, max_len, py_starts)
    assert c_starts.tolist() == py_starts.tolist()
    assert c_stop == py_stop


# -- whole captures through the readers --------------------------------------------------
def _read_both(path: Path, chunk: int, monkeypatch: Any) -> Tuple[Any, Any]:
    with monkeypatch.context() as m:
        m.setattr(pcap, "pcap_walk", accel._c_pcap_walk)
        m.setattr(pcapng, "epb_run", accel._c_epb_run)
        c = read_capture(path, True, chunk)
    with monkeypatch.context() as m:
        m.setattr(pcap, "pcap_walk", accel.py_pcap_walk)
        m.setattr(pcapng, "epb_run", accel.py_epb_run)
        py = read_capture(path, True, chunk)
    return c, py


def _capture(fmt: str, frames: List[bytes], big: bool) -> bytes:
    out = io.BytesIO()
    endian = ">" if big else "<"
    if fmt == "pcap":
        writer: Any = PcapWriter(out, endian=endian)
    else:
        writer = PcapngWriter(out, endian=endian)
        writer.add_interface()
    for k, frame in enumerate(frames):
        writer.write(frame, ts_ns=k * 1000)
    return out.getvalue()


@FILES
@given(
    frames=st.lists(st.binary(min_size=0, max_size=120), max_size=30),
    fmt=st.sampled_from(["pcap", "pcapng"]),
    big=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 60),
    chunk=st.sampled_from([40, 100, 333, 1 << 20]),
)
def test_readers_give_the_same_records_and_errors_with_either_walk(
    tmp_path: Path,
    monkeypatch: Any,
    frames: List[bytes],
    fmt: str,
    big: bool,
    edits: List[Tuple[int, int]],
    cut: int,
    chunk: int,
) -> None:
    data = bytearray(_capture(fmt, frames, big))
    for at, value in edits:  # damage anywhere after the file header
        if len(data) > 24:
            data[24 + at % (len(data) - 24)] = value
    path = tmp_path / ("x." + fmt)
    path.write_bytes(bytes(data[: max(24, len(data) - cut)]))
    c, py = _read_both(path, chunk, monkeypatch)
    assert c == py


def test_pure_python_environment_variable() -> None:
    """SCAPY_GENEVE_PURE_PYTHON=1: the readers use the Python walks and the batch the numpy
    stages, with the same records, stats and scan records."""
    top = Path(__file__).resolve().parents[1]
    captures = sorted(str(p) for d in ("scapy_geneve/data", "pcaps") for p in (top / d).glob("*.pcap*"))
    code = (
        "import hashlib, sys\n"
        "from scapy_geneve.capture import accel, pcap, pcapng, scan_batch\n"
        "from scapy_geneve.capture.pcapio import iter_records\n"
        "from scapy_geneve.capture.scan import compute_stats, scan\n"
        "print(accel.COMPILED, pcap.pcap_walk is accel.py_pcap_walk, pcapng.epb_run is accel.py_epb_run,\n"
        "      scan_batch.COMPILED_PASS is None)\n"
        "for path in sys.argv[1:]:\n"
        "    seen = [list(iter_records(path)), compute_stats(path).to_dict()]\n"
        "    seen.append([r.as_dict() for r in scan(path)])\n"
        "    print(path, hashlib.sha256(repr(seen).encode()).hexdigest())\n"
    )

    def run(pure: str) -> List[str]:
        env = dict(os.environ, SCAPY_GENEVE_PURE_PYTHON=pure)
        out = subprocess.run(
            [sys.executable, "-c", code, *captures], env=env, capture_output=True, text=True, check=True
        )
        return out.stdout.splitlines()

    pure, default = run("1"), run("")
    assert pure[0] == "False True True True"
    assert default[0] == "True False False False"
    assert pure[1:] == default[1:] and len(pure) == len(captures) + 1


def test_the_walks_keep_the_gil() -> None:
    """A compiled walk is short (microseconds to a few milliseconds) and keeps the GIL.
    One that let it go would, beside a busy Python thread, wait up to the switch
    interval to take it back, at every call: one call per packet on a pcapng whose
    packets alternate with other blocks (10 s instead of 1 s for 100,000 packets).
    Here the other thread can only run if a walk lets the GIL go (the switch interval
    is 10 s): it must not run at all during 20,000 walks."""
    import threading

    records = pcap_record(False, 4, 4) * 3
    blocks = epb(False, 6, 32, 24) + epb(False, 3, 16, 8)
    ran = [0]
    stop = threading.Event()

    def other() -> None:
        while not stop.is_set():
            ran[0] += 1
            time.sleep(0)  # lets the GIL go at once: it runs only when it finds it free

    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    thread = threading.Thread(target=other)
    thread.start()
    try:
        before = ran[0]
        for _ in range(10000):
            accel._c_pcap_walk(records, False, 1000, array("q"))
            accel._c_epb_run(blocks, 0, False, MAX_BLOCK_LEN, array("q"))
        assert ran[0] == before, "another thread ran %d times: a walk let the GIL go" % (ran[0] - before)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


# -- packaging: the extension is optional -----------------------------------------------
def _wheel(tmp: Path, env: dict) -> Path:
    """A wheel of the project built in a copy of its tree under TMP (nothing written beside it)."""
    top = Path(__file__).resolve().parents[1]
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "scapy_geneve_main.py"):
        (tree / name).write_bytes((top / name).read_bytes())
    for path in (top / "scapy_geneve").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
            dest = tree / path.relative_to(top)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())
    out = tmp / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            str(out),
            str(tree),
        ],
        env=dict(os.environ, **env),
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def test_without_a_compiler_the_package_installs_and_reads_with_the_python_walks(tmp_path: Path) -> None:
    """CC=false (no working compiler): the wheel builds without the extensions, and the
    readers run on the Python walks and the numpy stages with the same records and stats."""
    import zipfile

    wheel = _wheel(tmp_path, {"CC": "false"})
    names = zipfile.ZipFile(wheel).namelist()
    assert "scapy_geneve/capture/accel.py" in names
    assert not [n for n in names if n.endswith(".so") or n.endswith(".pyd")]
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = (  # the unpacked wheel first, before a development install's import hook
        "import hashlib, sys\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from scapy_geneve.capture import accel, scan_batch\n"
        "from scapy_geneve.capture.pcapio import iter_records\n"
        "from scapy_geneve.capture.scan import compute_stats\n"
        "print(accel.__file__.startswith(sys.argv[1]), accel.COMPILED, scan_batch.COMPILED_PASS)\n"
        "seen = [list(iter_records(sys.argv[2])), compute_stats(sys.argv[2]).to_dict()]\n"
        "print(hashlib.sha256(repr(seen).encode()).hexdigest())\n"
    )
    sample = str(Path(__file__).resolve().parents[1] / "pcaps" / "geneve_options.pcap")
    env = dict(os.environ, SCAPY_GENEVE_PURE_PYTHON="")
    out = subprocess.run(
        [sys.executable, "-c", code, str(unpacked), sample],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "True False None"
    compiled_here = (
        "import hashlib, sys\n"
        "from scapy_geneve.capture.pcapio import iter_records\n"
        "from scapy_geneve.capture.scan import compute_stats\n"
        "seen = [list(iter_records(sys.argv[1])), compute_stats(sys.argv[1]).to_dict()]\n"
        "print(hashlib.sha256(repr(seen).encode()).hexdigest())\n"
    )
    here = subprocess.run(
        [sys.executable, "-c", compiled_here, sample], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert here == out[1:]


def test_with_a_compiler_the_wheel_carries_the_extension(tmp_path: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(_wheel(tmp_path, {})).namelist()
    for module in ("_walk", "_batch"):
        assert [n for n in names if n.startswith("scapy_geneve/capture/%s." % module) and n.endswith(".so")]
