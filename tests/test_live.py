"""Live pipelines (issue 10): ``tcpdump -w - | scapy-geneve filter - - | tcpdump -r -``.

A producer writes one packet every 100 ms into a pipe; each packet must come
out of the command before the producer writes the next one (so certainly
before the producer ends).  The test waits for packet k's output before
writing packet k+1: a reader that waits for 4 MiB or the end of its input
never produces it, and the wait's guard (``GUARD`` seconds, far above any
honest latency) fails the test instead of hanging.  No timing is asserted.
"""

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from array import array
from pathlib import Path
from typing import IO, List

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, CaptureReader, PcapWriter, iter_records
from scapy_geneve.layers.geneve import Geneve

GUARD = 30.0  # seconds: a failure guard, not a measurement
PACKETS = 5
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)


def frame(vni: int, seq: int) -> bytes:
    return bytes(
        Ether()
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=50000 + seq, dport=6081)
        / Geneve(vni=vni)
        / Ether()
        / IP()
        / UDP()
        / (bytes([seq]) * 10)
    )


def record(data: bytes, seq: int) -> bytes:
    """A pcap record: ts seq.0 s, caplen = wirelen = len(data), then the frame."""
    return struct.pack("<IIII", 1_700_000_000 + seq, 0, len(data), len(data)) + data


def read_exactly(stream: IO[bytes], n: int) -> bytes:
    """N bytes from STREAM, waiting at most GUARD seconds for them."""
    out = b""
    deadline = time.monotonic() + GUARD
    fd = stream.fileno()
    while len(out) < n:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            pytest.fail(
                "no output %.0f s after the packet was written: the command "
                "waits for more input instead of handing out each packet" % GUARD
            )
        chunk = os.read(fd, n - len(out))
        if not chunk:
            pytest.fail("the command ended its output early")
        out += chunk
    return out


def read_line(stream: IO[bytes]) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += read_exactly(stream, 1)
    return line


def wait_until_drained(pipe: IO[bytes]) -> None:
    """Wait until the reader of PIPE has read every byte written into it."""
    left = array("i", [0])
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        fcntl.ioctl(pipe.fileno(), termios.FIONREAD, left)
        if not left[0]:
            return
        time.sleep(0.01)
    pytest.fail("the command did not read its input")


def cli(*args: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def produce(proc: "subprocess.Popen[bytes]", seq: int, vni: int = 5) -> bytes:
    """Write packet SEQ into PROC's stdin (then 100 ms pass, as from a live capture)."""
    assert proc.stdin is not None
    data = frame(vni, seq)
    proc.stdin.write(record(data, seq))
    proc.stdin.flush()
    return data


def test_reader_hands_out_each_record_from_a_pipe() -> None:
    """CaptureReader on a pipe: each record as soon as it is complete."""
    rfd, wfd = os.pipe()
    with os.fdopen(wfd, "wb", buffering=0) as writer:
        writer.write(PCAP_HEADER)
        with CaptureReader("/dev/fd/%d" % rfd) as reader:
            assert reader.live
            records = reader.records()
            for seq in range(PACKETS):
                writer.write(record(frame(5, seq), seq))
                got = next(records)  # blocks forever if the reader waits for more
                assert got.number == seq + 1 and got.data == frame(5, seq)
            writer.close()
            assert list(records) == []
    os.close(rfd)


def test_filter_pipeline_passes_each_packet_through_before_the_producer_ends() -> None:
    """``producer | filter - - --vni 5``: packet k (VNI 5) comes out before packet
    k+1 is written; packets of VNI 6 are dropped."""
    proc = cli("filter", "-", "-", "--vni", "5", "-q")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(PCAP_HEADER)
        proc.stdin.flush()
        assert read_exactly(proc.stdout, 24)[:4] == PCAP_HEADER[:4]
        for seq in range(PACKETS):
            produce(proc, 100 + seq, vni=6)  # not selected: nothing comes out
            data = produce(proc, seq)
            hdr = read_exactly(proc.stdout, 16)
            caplen = struct.unpack("<I", hdr[8:12])[0]
            assert read_exactly(proc.stdout, caplen) == data
            time.sleep(0.1)
        proc.stdin.close()
        assert proc.wait(GUARD) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()


def test_show_prints_each_packet_before_the_producer_ends() -> None:
    """``producer | show -``: one line per packet, as it arrives."""
    proc = cli("show", "-")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(PCAP_HEADER)
        for seq in range(PACKETS):
            produce(proc, seq, vni=5 + seq)
            line = read_line(proc.stdout)
            assert str(5 + seq).encode() in line or hex(5 + seq).encode() in line, line
            time.sleep(0.1)
        proc.stdin.close()
        assert proc.wait(GUARD) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_keeps_a_valid_file_with_every_packet_read(tmp_path: Path, signum: int) -> None:
    """``producer | filter - out.dump``, stopped by SIGINT/SIGTERM/SIGHUP while it
    waits for the next packet: OUT holds every packet it read (a valid
    pcap that tcpdump-compatible readers accept), no temporary is left, and
    the exit code is 128 + the signal."""
    # ".dump": no format chosen by the name, so filter copies stdin as it comes.
    out = tmp_path / "out.dump"
    proc = cli("filter", "-", str(out), "-q")
    assert proc.stdin is not None
    sent: List[bytes] = []
    try:
        proc.stdin.write(PCAP_HEADER)
        for seq in range(PACKETS):
            sent.append(produce(proc, seq))
        wait_until_drained(proc.stdin)  # filter has read every packet
        proc.send_signal(signum)
        code = proc.wait(GUARD)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
    assert code == 128 + signum, err
    assert "Traceback" not in err
    assert [r.data for r in iter_records(out)] == sent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dump"]


def test_writer_flushes_each_packet_to_a_pipe() -> None:
    """PcapWriter on a pipe: each record is readable at once, no flush() needed."""
    rfd, wfd = os.pipe()
    with os.fdopen(wfd, "wb") as handle, os.fdopen(rfd, "rb", buffering=0) as reader:
        writer = PcapWriter(handle)
        assert read_exactly(reader, 24) == PCAP_HEADER
        for seq in range(3):
            writer.write(frame(5, seq), ts_ns=seq)
            hdr = read_exactly(reader, 16)
            assert read_exactly(reader, struct.unpack("<I", hdr[8:12])[0]) == frame(5, seq)
