"""Reliability under hostile input and careless use (issue 12): nothing lost,
nothing overwritten, no traceback, memory and time that follow the bytes.

Each test names the fault it guards against; the command-line ones run
``python -m scapy_geneve`` as a user would, in a temporary directory.
"""

import gzip
import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    CaptureReader,
    PcapngWriter,
    PcapWriter,
    iter_records,
    open_capture,
)
from scapy_geneve.errors import CaptureError
from scapy_geneve.layers.geneve import Geneve

ROOT = Path(__file__).resolve().parent.parent


def frame(vni: int = 3, seq: int = 0) -> bytes:
    return bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=50000 + seq, dport=6081)
        / Geneve(vni=vni)
        / Ether()
        / IP()
        / UDP()
        / (bytes([seq % 256]) * 8)
    )


def write_pcap(path: Path, frames: List[bytes]) -> Path:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET)
        for i, data in enumerate(frames):
            writer.write(data, ts_ns=1_700_000_000_000_000_000 + i * 1000)
    return path


def cli(*args: str, cwd: Path, **kw: object) -> "subprocess.CompletedProcess[bytes]":
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "scapy_geneve", *args],
        cwd=str(cwd),
        capture_output=True,
        env=env,
        timeout=120,
        **kw,
    )  # type: ignore[call-overload]


def sh(script: str, cwd: Path) -> "subprocess.CompletedProcess[str]":
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        SG="%s -m scapy_geneve" % sys.executable,
    )
    return subprocess.run(
        ["bash", "-c", script], cwd=str(cwd), capture_output=True, text=True, env=env, timeout=120
    )


def one_clean_line(stderr: "bytes | str") -> str:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def cap(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "cap.pcap", [frame(3 if i % 2 else 4, i) for i in range(20)])


# -- OUT that is not a plain file --------------------------------------------------------------
def test_dev_stdout_as_out_reaches_stdout(tmp_path: Path, cap: Path) -> None:
    """`filter in.pcap /dev/stdout > x`: the bytes reach stdout (the symlink was
    replaced by a regular file and nothing reached stdout, exit 0)."""
    res = sh("$SG filter cap.pcap /dev/stdout --vni 3 -q > got.pcap", tmp_path)
    assert res.returncode == 0, res.stderr
    assert [r.data for r in iter_records(tmp_path / "got.pcap")] == [
        r.data for r in iter_records(cap) if r.number % 2 == 0
    ]
    assert os.path.islink("/dev/stdout")


def test_process_substitution_as_out(tmp_path: Path, cap: Path) -> None:
    """`filter in.pcap >(cat > x)`: /dev/fd/63, a pipe (it failed with ENOENT)."""
    res = sh("$SG filter cap.pcap >(cat > got.pcap) -q; wait; sleep 0.2", tmp_path)
    assert res.returncode == 0, res.stderr
    for _ in range(50):
        if (tmp_path / "got.pcap").stat().st_size == cap.stat().st_size:
            break
        time.sleep(0.1)
    assert (tmp_path / "got.pcap").read_bytes() == cap.read_bytes()


def test_stdin_that_is_out_is_refused(tmp_path: Path, cap: Path) -> None:
    """`filter --vni 3 - cap.pcap < cap.pcap` replaced the input with the subset."""
    before = cap.read_bytes()
    with open(cap, "rb") as stdin:
        res = cli("filter", "--vni", "3", "-", "cap.pcap", cwd=tmp_path, stdin=stdin)
    assert res.returncode == 2
    assert "refusing to overwrite the input" in one_clean_line(res.stderr)
    assert cap.read_bytes() == before


def test_streamed_output_is_not_called_unwritten(tmp_path: Path, cap: Path) -> None:
    """`filter DAMAGED -`: the packets before the damage were already streamed
    to stdout, so the error must not say "- not written"."""
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(cap.read_bytes()[:-10])
    res = cli("filter", "damaged.pcap", "-", cwd=tmp_path)
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "not written" not in err and "Traceback" not in err
    (tmp_path / "streamed.pcap").write_bytes(res.stdout)  # every packet before the damage
    assert [r.data for r in iter_records(tmp_path / "streamed.pcap")] == [r.data for r in iter_records(cap)][
        :19
    ]


# -- every OSError: one line naming the path, exit 2 -----------------------------------------
@pytest.mark.parametrize(
    "make_args, where",
    [
        (lambda d: ["stats", "cap.pcap/x"], "cap.pcap/x"),  # ENOTDIR
        (lambda d: ["stats", "loop"], "loop"),  # ELOOP
        (lambda d: ["filter", "cap.pcap", "y" * 256], "y" * 256),  # ENAMETOOLONG
        (lambda d: ["filter", "cap.pcap", "/dev/full"], "/dev/full"),  # ENOSPC
        (lambda d: ["stats", "/proc/self/mem"], "/proc/self/mem"),  # EIO
    ],
)
def test_os_errors_are_one_line_naming_the_path(tmp_path: Path, cap: Path, make_args, where) -> None:
    os.symlink("loop", tmp_path / "loop")
    res = cli(*make_args(tmp_path), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    line = one_clean_line(res.stderr)
    assert where in line and line.startswith("scapy-geneve ")


def test_stdout_on_a_full_disk(tmp_path: Path, cap: Path) -> None:
    """`show cap.pcap > /dev/full`: ENOSPC on standard output, one line, exit 2."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open("/dev/full", "wb") as full:
        res = subprocess.run(
            [sys.executable, "-m", "scapy_geneve", "show", "cap.pcap"],
            cwd=str(tmp_path),
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
    assert res.returncode == 2
    assert "No space left on device" in one_clean_line(res.stderr)


def test_a_closed_pipe_is_an_error_not_success(tmp_path: Path) -> None:
    """`lint many.pcap | head -1` exited 0 though it found problems; tcpdump
    says "Unable to write output: Broken pipe" and fails.  No traceback either."""
    bad = bytes(Ether() / IP() / UDP(sport=1, dport=6081) / Geneve(version=1, vni=1))
    write_pcap(tmp_path / "many.pcap", [bad] * 5000)
    res = sh(
        "set -o pipefail; $SG lint many.pcap 2>err.txt | head -1 >/dev/null; echo ${PIPESTATUS[0]}", tmp_path
    )
    assert res.stdout.strip() == "2", res.stdout
    err = (tmp_path / "err.txt").read_text()
    assert "Broken pipe" in one_clean_line(err)


# -- memory and time that follow the bytes -------------------------------------------------------
def test_a_claimed_256_mb_record_allocates_nothing_before_its_bytes(tmp_path: Path) -> None:
    """A 238-byte pcap whose header claims snaplen 0x0FFFFFFF and a 268 MB
    record: refused at the first short read, under an address-space limit
    far below 256 MB (it allocated the 256 MB first: MemoryError)."""
    path = tmp_path / "huge.pcap"
    path.write_bytes(
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0x0FFFFFFF, 1)
        + struct.pack("<IIII", 0, 0, 0x0FFFFFF0, 0x0FFFFFF0)
        + bytes(198)
    )
    assert path.stat().st_size == 238
    code = textwrap.dedent("""
        import resource, sys
        from scapy_geneve.capture.pcapio import open_capture
        from scapy_geneve.errors import CaptureError
        import numpy
        with open("/proc/self/status") as f:
            vm = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + 96 * 2**20, vm + 96 * 2**20))
        try:
            with open_capture(sys.argv[1]) as reader:
                list(reader.records())
        except CaptureError as exc:
            print("CaptureError:", exc)
    """)
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, cwd=str(ROOT)
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert "CaptureError:" in res.stdout and "truncated record" in res.stdout
    assert "offset 24, packet 1" in res.stdout


def test_one_section_per_packet_is_one_batch(tmp_path: Path) -> None:
    """A pcapng with a Section Header Block before every packet ended a batch
    per packet (5,000 packets: 7 s against 0.45 s as pcap); now a new section
    of the same byte order continues the batch."""
    buf = io.BytesIO()
    frames = [frame(5, i) for i in range(5000)]
    for i, data in enumerate(frames):
        writer = PcapngWriter(buf)
        writer.add_interface(LINKTYPE_RAW if i % 2 else LINKTYPE_ETHERNET)
        writer.write(data, ts_ns=i)
    path = tmp_path / "sections.pcapng"
    path.write_bytes(buf.getvalue())
    with open_capture(path) as reader:
        batches = list(reader.batches())
    assert len(batches) == 1
    records = [r for b in batches for r in b.records()]
    assert [r.data for r in records] == frames
    assert [r.linktype for r in records] == [
        LINKTYPE_RAW if i % 2 else LINKTYPE_ETHERNET for i in range(5000)
    ]


def test_zero_length_records_are_walked_in_big_batches(tmp_path: Path) -> None:
    """A gzip of zero-length records (1 MB of gzip held 67M of them): read in
    chunk-sized batches, each record once (linear)."""
    n = 300_000
    path = tmp_path / "zero.pcap.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        handle.write(struct.pack("<IIII", 1, 0, 0, 0) * n)
    with open_capture(path) as reader:
        sizes = [len(b) for b in reader.batches()]
    assert sum(sizes) == n and len(sizes) <= 3


def test_gzip_on_a_pipe_whose_first_read_is_one_byte() -> None:
    """The gzip magic split over two reads (1 byte, then the rest) was missed."""
    raw = gzip.compress(write_pcap_bytes([frame(7, i) for i in range(3)]))
    rfd, wfd = os.pipe()

    def produce() -> None:
        with os.fdopen(wfd, "wb", buffering=0) as out:
            out.write(raw[:1])
            time.sleep(0.3)
            out.write(raw[1:])

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        with CaptureReader("/dev/fd/%d" % rfd) as reader:
            assert reader.compressed
            assert [r.data for r in reader.records()] == [frame(7, i) for i in range(3)]
    finally:
        thread.join()
        os.close(rfd)


def write_pcap_bytes(frames: List[bytes]) -> bytes:
    buf = io.BytesIO()
    writer = PcapWriter(buf, LINKTYPE_ETHERNET)
    for i, data in enumerate(frames):
        writer.write(data, ts_ns=i * 1000)
    return buf.getvalue()


# -- fuzzing each reader entry point: only CaptureError, naming file, offset, packet -----------
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEED_FRAMES = [frame(i, i) for i in range(4)]
SEED_PCAP = write_pcap_bytes(SEED_FRAMES)


def _pcapng_bytes() -> bytes:
    buf = io.BytesIO()
    writer = PcapngWriter(buf)
    writer.add_interface(LINKTYPE_ETHERNET, tsresol=9)
    writer.add_interface(LINKTYPE_RAW, tsoffset=5)
    for i, data in enumerate(SEED_FRAMES):
        writer.write(data, ts_ns=i, interface=0)
    writer.write_simple(SEED_FRAMES[0])
    second = PcapngWriter(buf, endian=">")  # a second section, other byte order
    second.add_interface(LINKTYPE_ETHERNET)
    second.write(SEED_FRAMES[1], ts_ns=5)
    return buf.getvalue()


SEED_PCAPNG = _pcapng_bytes()
edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8)


def _mutate(data: bytes, changes: List[Tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in changes:
        buf[pos % len(buf)] = value
    return bytes(buf[: len(buf) - cut]) if 0 < cut < len(buf) else bytes(buf)


def _read_everything(path: Path, chunk: int) -> None:
    """Read PATH through records() and batches(); only CaptureError may come out,
    naming the file and an offset (and a packet once past the file header)."""
    for mode in ("records", "batches"):
        try:
            with CaptureReader(path, chunk_size=chunk) as reader:
                if mode == "records":
                    for rec in reader.records():
                        assert len(rec.data) == rec.caplen
                else:
                    for batch in reader.batches():
                        list(batch.records())
        except CaptureError as exc:
            assert exc.path == str(path) and exc.offset is not None and exc.offset >= 0, exc
            assert exc.packet is not None or exc.offset <= 24, exc


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(
    data=st.binary(max_size=600),
    changes=edits,
    cut=st.integers(0, 200),
    chunk=st.sampled_from([16, 100, 1 << 20]),
)
def test_fuzz_pcap(fuzz_dir: Path, data: bytes, changes: List[Tuple[int, int]], cut: int, chunk: int) -> None:
    path = fuzz_dir / "f.pcap"
    path.write_bytes(
        _mutate(SEED_PCAP + data[:64], changes, cut) if changes or cut else SEED_PCAP[:24] + data
    )
    _read_everything(path, chunk)


@FUZZ
@given(
    data=st.binary(max_size=600),
    changes=edits,
    cut=st.integers(0, 200),
    chunk=st.sampled_from([16, 100, 1 << 20]),
)
def test_fuzz_pcapng(
    fuzz_dir: Path, data: bytes, changes: List[Tuple[int, int]], cut: int, chunk: int
) -> None:
    path = fuzz_dir / "f.pcapng"
    path.write_bytes(
        _mutate(SEED_PCAPNG + data[:64], changes, cut) if changes or cut else SEED_PCAPNG[:28] + data
    )
    _read_everything(path, chunk)


@FUZZ
@given(
    which=st.sampled_from(["pcap", "pcapng"]),
    changes=edits,
    cut=st.integers(0, 200),
    inner=edits,
    chunk=st.sampled_from([16, 1 << 20]),
)
def test_fuzz_gzip(
    fuzz_dir: Path,
    which: str,
    changes: List[Tuple[int, int]],
    cut: int,
    inner: List[Tuple[int, int]],
    chunk: int,
) -> None:
    """Mutations of the decompressed capture and of the gzip stream itself."""
    plain = _mutate(SEED_PCAP if which == "pcap" else SEED_PCAPNG, inner, 0)
    path = fuzz_dir / "f.cap.gz"
    path.write_bytes(_mutate(gzip.compress(plain), changes, cut))
    _read_everything(path, chunk)
