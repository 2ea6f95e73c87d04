"""SIGINT, SIGTERM and SIGHUP: stop reading, keep what was done, tidy up, exit
128 + the signal (130, 143, 129), as tcpdump and tshark keep what they read.

The mechanism (scapy_geneve.capture.interrupt) is exercised in this process
with signals sent to itself; the command line in a subprocess fed by a pipe
(the signal comes while it waits for input, or while it processes a batch).
"""

import os
import select
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from scapy_geneve.capture.interrupt import (
    Interrupted,
    checkpoint,
    deferring,
    graceful_signals,
    pending,
    shielded,
    wait_readable,
)
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, CaptureReader, PcapWriter
from scapy_geneve.cli import main
from tests.conftest import reaped

ROOT = Path(__file__).resolve().parent.parent
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    for _ in range(1000):  # the handler runs between bytecodes, at the latest here
        pass


@pytest.mark.parametrize("signum", SIGNALS)
def test_outside_a_reader_a_signal_raises_at_once(signum: int) -> None:
    with graceful_signals():
        with pytest.raises(Interrupted) as err:
            kill_self(signum)
    assert err.value.signum == signum and err.value.exit_code == 128 + signum
    assert isinstance(err.value, KeyboardInterrupt)  # every Ctrl-C clean-up applies


@pytest.mark.parametrize("signum", SIGNALS)
def test_while_records_are_processed_a_signal_waits_for_the_next_read(signum: int) -> None:
    """Inside a reader (deferring), the first signal is noted; the pass stops
    when it would read again, so what it was handed is finished."""
    finished = False
    with graceful_signals():
        with pytest.raises(Interrupted):
            with deferring():
                kill_self(signum)
                assert pending() == signum
                finished = True  # the record's work completes
                checkpoint()  # the next read: stop here
                pytest.fail("read after a noted signal")
    assert finished


def test_a_second_signal_does_not_wait() -> None:
    """A consumer stuck (writing to a stopped pipe) is still stopped by a second signal."""
    with graceful_signals():
        with pytest.raises(Interrupted) as err:
            with deferring():
                kill_self(signal.SIGTERM)
                kill_self(signal.SIGINT)
                pytest.fail("the second signal did not raise")
    assert err.value.signum == signal.SIGINT


def test_waiting_for_live_input_a_signal_ends_the_wait_taking_no_byte() -> None:
    """A reader waiting on an empty pipe (select on it and the wake-up pipe):
    the signal ends the wait; the bytes that come later are still in the pipe."""
    rfd, wfd = os.pipe()
    try:
        with graceful_signals():
            with deferring():
                os.write(wfd, b"x")
                wait_readable(rfd)  # data there: returns at once
                assert os.read(rfd, 1) == b"x"
                with pytest.raises(Interrupted):
                    signal.setitimer(signal.ITIMER_REAL, 0.05)
                    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGHUP))
                    try:
                        wait_readable(rfd)  # nothing to read: waits for the signal
                    finally:
                        signal.signal(signal.SIGALRM, previous)
        os.write(wfd, b"later")
        assert os.read(rfd, 10) == b"later"
    finally:
        os.close(rfd)
        os.close(wfd)


def test_a_teardown_finishes_before_the_signal_acts() -> None:
    steps = []
    with graceful_signals():
        with pytest.raises(Interrupted):
            with shielded():
                kill_self(signal.SIGTERM)
                steps.append("namespaces")
                kill_self(signal.SIGTERM)
                steps.append("daemons")
    assert steps == ["namespaces", "daemons"]


def test_without_graceful_signals_nothing_changes() -> None:
    """Library use: no handler is installed, checkpoints are free."""
    before = {s: signal.getsignal(s) for s in SIGNALS}
    checkpoint()
    with deferring(), shielded():
        pass
    assert pending() is None
    assert {s: signal.getsignal(s) for s in SIGNALS} == before


def test_the_handlers_are_restored() -> None:
    before = {s: signal.getsignal(s) for s in SIGNALS}
    with graceful_signals():
        pass
    assert {s: signal.getsignal(s) for s in SIGNALS} == before


def _pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)


def test_a_reader_on_a_pipe_stops_between_records(tmp_path: Path) -> None:
    """A signal while the caller processes record 2 of a pipe: records 1-2 were
    handed out and finished; the pass stops before reading more."""
    rfd, wfd = os.pipe()
    frames = [bytes([i]) * 60 for i in range(5)]
    with os.fdopen(wfd, "wb", buffering=0) as out:
        out.write(_pcap_header())
        for i, data in enumerate(frames[:3]):
            out.write(struct.pack("<IIII", i, 0, 60, 60) + data)
        done = []
        with graceful_signals():
            with pytest.raises(Interrupted) as err:
                with CaptureReader("/dev/fd/%d" % rfd) as reader:
                    for rec in reader.records():
                        if rec.number == 2:
                            kill_self(signal.SIGTERM)
                        done.append(rec.data)
    os.close(rfd)
    assert err.value.exit_code == 143
    assert done == frames[:2]


@pytest.mark.parametrize("signum", SIGNALS)
def test_main_maps_the_signal_to_its_exit_code(tmp_path: Path, signum: int) -> None:
    """`scapy-geneve filter - -` in a pipeline, after passing one packet through
    (so it is in its read loop): the signal ends it with 128 + signum, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "scapy_geneve", "filter", "-", "-", "-q"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        PcapWriter(proc.stdin).write(bytes(60))  # a pipe: flushed per packet
        ready, _, _ = select.select([proc.stdout], [], [], 60)  # a guard, not a measurement
        assert ready, "filter passed nothing through"
        got = b""
        while len(got) < 24 + 16 + 60:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, "filter ended early"
            got += chunk
        proc.send_signal(signum)
        code = proc.wait(60)
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        proc.kill()
        proc.wait()
    assert code == 128 + signum, err
    assert b"Traceback" not in err


def test_main_is_reentrant_after_a_signal(tmp_path: Path) -> None:
    """main() restores the handlers it installed (tests and embedders call it repeatedly)."""
    before = signal.getsignal(signal.SIGTERM)
    path = tmp_path / "one.pcap"
    with open(path, "wb") as handle:
        PcapWriter(handle).write(bytes(60))
    assert main(["stats", str(path)]) in (0, 1)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("command", ["stats", "filter"])
def test_ctrl_c_with_jobs_stops_every_worker_quietly(tmp_path: Path, command: str) -> None:
    """``--jobs 2`` over a finished file and a FIFO that never ends: Ctrl-C (SIGINT to the
    whole process group, as a terminal sends it) stops the parent and both workers, the
    busy one and the idle one, with 130 and no traceback; what stats prints is the
    finished file's counts (not the unfinished one's)."""
    done, fifo = tmp_path / "done.pcap", tmp_path / "live.pcap"
    with open(done, "wb") as handle:
        PcapWriter(handle).write(bytes(60))
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [sys.executable, "-m", "scapy_geneve", command, "-q", "--jobs", "2", str(done), str(fifo)]
    if command == "filter":
        argv.append(str(tmp_path / "out.pcap"))
    popen = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    with reaped(popen) as proc, open(fifo, "wb", buffering=0) as live:  # a worker opened it
        live.write(_pcap_header())
        select.select([], [], [], 2.0)  # the other worker finishes done.pcap meanwhile
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err, err.decode()
    if command == "stats" and out:  # done.pcap finished before the signal (2 s: almost always)
        assert b"1 packet" in out and b"live.pcap" not in out, out.decode()
