"""One output written by several processes in turn (capture/ordered.py, filter --jobs).

The pieces reach the output in order, each byte once, whatever the interleaving of
the workers' writes, their finishing and the parent's settling (hypothesis drives
the schedule); and ``filter --jobs N`` writes the bytes ``--jobs 1`` writes: with
pieces held in memory or in a file, empty pieces, damaged inputs, and a stop."""

import errno
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scapy_geneve.capture import ordered
from scapy_geneve.capture.ordered import Abandoned, Outcome, settle, Turns, TurnWriter
from scapy_geneve.capture.interrupt import Interrupted
from scapy_geneve.capture import parallel
from scapy_geneve.capture.parallel import inherited
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapWriter
from scapy_geneve.cli import filter as filter_cli
from scapy_geneve.cli import main
from scapy_geneve.cli.filter import Piece
from tests.test_dask import _frame

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = multiprocessing.get_context("spawn")  # Lock and RawValue work in one process too

chunks = st.lists(st.binary(min_size=0, max_size=40), max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(chunks, min_size=1, max_size=6),
    limit=st.integers(0, 64),
    prefix=st.binary(max_size=8),
    data=st.data(),
)
def test_pieces_land_in_order_whatever_the_schedule(
    tmp_path: Path, pieces: List[List[bytes]], limit: int, prefix: bytes, data: st.DataObject
) -> None:
    """Workers write and finish in any order (a piece finished before its turn is
    written by a thread when the turn comes), the parent settles each finished piece
    whenever it likes (in order): the output is the prefix, then the pieces in order.
    LIMIT small makes the held bytes go to a file part-way (0: all of them)."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / "out"
    with open(path, "wb") as out:
        out.write(prefix)
        out.flush()
        turns = Turns(CONTEXT, out.fileno(), out.tell(), len(pieces))
        try:
            _play(turns, pieces, limit, folder, data)
        finally:  # an example cut short leaves no thread to write into the next one's file
            turns.abandon()
            for thread in threading.enumerate():
                if thread.name.startswith("piece-"):
                    thread.join()
    assert path.read_bytes() == prefix + b"".join(b"".join(p) for p in pieces)
    assert sorted(os.listdir(folder)) == ["out"]  # every held file was removed


def _play(turns: Turns, pieces: List[List[bytes]], limit: int, folder: Path, data: st.DataObject) -> None:
    """Draw moves until every piece is settled: a write or the finish of an unfinished
    piece, or the settling of the next finished one."""
    writers = [TurnWriter(turns, k, str(folder), limit) for k in range(len(pieces))]
    written = [0] * len(pieces)
    outcomes: Dict[int, Outcome] = {}
    settled = 0
    while settled < len(pieces):
        moves: List[Tuple[str, int]] = [
            ("write" if written[k] < len(pieces[k]) else "finish", k)
            for k in range(len(pieces))
            if k not in outcomes
        ]
        if settled in outcomes:
            moves.append(("settle", settled))
        move, k = data.draw(st.sampled_from(moves))
        if move == "write":
            chunk = bytearray(pieces[k][written[k]])
            assert writers[k].write(chunk) == len(chunk)
            chunk[:] = b"\xee" * len(chunk)  # the caller reuses its buffer
            written[k] += 1
        elif move == "finish":
            outcomes[k] = writers[k].finish()
        else:
            end = settle(turns, k, outcomes[k])
            settled += 1
            assert end == turns.start + sum(len(c) for p in pieces[:settled] for c in p)


def _gone() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_turn_out_of_order_and_a_piece_nobody_writes_are_errors(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out:
        turns = Turns(CONTEXT, out.fileno(), 0, 2)
        with pytest.raises(RuntimeError, match="piece 1 ended out of turn"):
            turns.advance(1, 10)
        turns.advance(0, 0)
        with pytest.raises(OSError, match="piece 1 was not written: its worker"):
            settle(turns, 1, Outcome(-1, _gone()))


def _no_memory(*_args: Any) -> None:
    raise MemoryError()


@pytest.mark.parametrize(("failure", "code"), [("read-only output", errno.EBADF), ("MemoryError", errno.EIO)])
def test_a_failed_write_in_a_thread_reaches_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, code: int
) -> None:
    """The thread that writes a piece in its turn cannot raise to anyone: whatever
    stops it goes through TURNS, and the parent's settle raises it as an OSError
    (its errno, else EIO: the CLI names the output), never waits."""
    (tmp_path / "out").write_bytes(b"")
    with open(tmp_path / "out", "rb" if failure == "read-only output" else "wb") as out:
        turns = Turns(CONTEXT, out.fileno(), 0, 2)
        late = TurnWriter(turns, 1, str(tmp_path))
        late.write(b"second")
        outcome = late.finish()  # before its turn: a thread waits for it
        assert outcome.end == -1
        if failure == "MemoryError":
            monkeypatch.setattr(ordered, "_pwrite_all", _no_memory)
        turns.advance(0, 0)
        with pytest.raises(OSError) as caught:
            settle(turns, 1, outcome)
        assert caught.value.errno == code


def test_abandoned_writers_give_up_and_leave_no_file(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out:
        turns = Turns(CONTEXT, out.fileno(), 0, 2)
        late = TurnWriter(turns, 1, str(tmp_path), limit=0)
        late.write(b"held in a file")
        assert len(os.listdir(tmp_path)) == 2
        assert late.finish().end == -1
        turns.abandon()
        for _ in range(500):
            if len(os.listdir(tmp_path)) == 1:
                break
            time.sleep(0.01)
        assert os.listdir(tmp_path) == ["out"]
        with pytest.raises(Abandoned):
            TurnWriter(turns, 0, str(tmp_path)).write(b"too late")
    assert (tmp_path / "out").read_bytes() == b""


def test_a_held_file_is_copied_by_hand_where_the_kernel_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(bytes(range(256)) * 9000)
    dst.write_bytes(b"head")

    def refuse(*_args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    with open(src, "rb") as s, open(dst, "r+b") as d:
        assert ordered.copy_range(s.fileno(), d.fileno(), 4) == 256 * 9000
    assert dst.read_bytes() == b"head" + bytes(range(256)) * 9000


# -- filter --jobs: the same bytes as --jobs 1 ---------------------------------------------
FRAMES = [_frame(random.Random(seed)) for seed in range(60)]  # tunnels of every kind


def _capture(path: Path, count: int, seed: int) -> str:
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=True)
        for i in range(count):
            writer.write(rng.choice(FRAMES), 1_700_000_000_000_000_000 + i * 1000)
    return str(path)


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    """Pieces of very different sizes, one without packets: later ones finish first."""
    folder = tmp_path_factory.mktemp("inputs")
    sizes = (3000, 10, 0, 400, 2500, 1, 700)
    return [_capture(folder / ("in%d.pcap" % k), n, k) for k, n in enumerate(sizes)]


@pytest.fixture
def inputs(captures: List[str], tmp_path: Path) -> List[str]:
    """The captures, copied: a test may damage one."""
    copies = []
    for path in captures:
        copies.append(str(tmp_path / os.path.basename(path)))
        shutil.copyfile(path, copies[-1])
    return copies


def _filter(argv: List[str], out: Path, jobs: int) -> Tuple[int, bytes]:
    code = main(["filter", "-q", "--jobs", str(jobs), *argv, str(out)])
    return code, out.read_bytes() if out.exists() else b""


@pytest.mark.parametrize("limit", [None, 0, 5000])
def test_filter_jobs_write_the_bytes_of_one_process(
    tmp_path: Path, inputs: List[str], monkeypatch: pytest.MonkeyPatch, limit: Optional[int]
) -> None:
    """Held in memory (the default), every held byte in a file (0), or some of each."""
    if limit is not None:
        monkeypatch.setattr(ordered, "HOLD_LIMIT", limit)
    for selection in (["--kind", "geneve"], ["--vni", "7", "--invert"], []):
        one = _filter(selection + inputs, tmp_path / "one.pcap", 1)
        for jobs in (2, 3):
            assert _filter(selection + inputs, tmp_path / ("j%d.pcap" % jobs), jobs) == one
        assert one[0] == 0 and len(one[1]) > 24
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary left


def test_filter_jobs_on_a_damaged_input(tmp_path: Path, inputs: List[str]) -> None:
    """--keep-partial: what matched before the damage, then the rest, as one process
    writes it; without it, no output at all."""
    damaged = Path(inputs[4])
    damaged.write_bytes(damaged.read_bytes()[:-7])  # the last record cut short
    one = _filter(["--keep-partial", *inputs], tmp_path / "one.pcap", 1)
    assert one[0] == 2 and one[1]
    assert _filter(["--keep-partial", *inputs], tmp_path / "two.pcap", 2) == one
    assert _filter(inputs, tmp_path / "none.pcap", 2) == (2, b"")


def _stopped_in_its_turn(item: Tuple[int, Piece], *args: Any) -> Any:
    """(worker) Piece 1 writes 2 MiB in its turn, then is stopped; the others as usual."""
    if item[0] != 1:
        return REAL_PIECE_IN_TURN(item, *args)
    write_in_turn_then_stop(item[0], args[-1], b"\xee" * (2 << 20))


def write_in_turn_then_stop(index: int, directory: str, junk: bytes) -> None:
    """(worker) Wait for piece INDEX's turn, write JUNK into the output, then stop as
    a Ctrl-C stops a worker."""
    turns = inherited()
    while turns.position(index) is None:
        time.sleep(0.01)
    TurnWriter(turns, index, directory).write(junk)
    raise Interrupted(signal.SIGINT)


REAL_PIECE_IN_TURN = filter_cli._piece_in_turn


def test_a_stop_keeps_the_pieces_before_it(
    tmp_path: Path, inputs: List[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a worker writes its piece in place: OUT keeps the pieces whose
    results came back, whole, and nothing of the stopped one (its bytes are cut off)."""
    one = _filter(inputs[:1], tmp_path / "one.pcap", 1)
    monkeypatch.setattr(filter_cli, "_piece_in_turn", _stopped_in_its_turn)
    assert _filter(inputs[:3], tmp_path / "two.pcap", 2) == (130, one[1])


def _killed(item: Tuple[int, Piece], *args: Any) -> Any:
    """(worker) Piece 1's worker dies at once (SIGKILL, as the OOM killer does)."""
    if item[0] == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_PIECE_IN_TURN(item, *args)


def _killed_counting(path: str, kwargs: Any) -> Any:
    if path.endswith("in1.pcap"):
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_COUNT_FILE(path, kwargs)


REAL_COUNT_FILE = parallel.count_file
KILLERS = {
    "filter": "from scapy_geneve.cli import filter as f; f._piece_in_turn = t._killed",
    "stats": "from scapy_geneve.capture import parallel as p; p.count_file = t._killed_counting",
}


@pytest.mark.parametrize("command", ["filter", "stats"])
def test_a_worker_killed_stops_the_run_with_an_error(tmp_path: Path, inputs: List[str], command: str) -> None:
    """A worker killed (SIGKILL, the OOM killer) while the others wait for work: the
    run stops at once with one line naming what happened, exit 2, no output, no
    temporary file (a worker idle in the pool's queue used to wait for ever)."""
    script = (
        "import sys; from tests import test_ordered as t; %s; from scapy_geneve.cli import main; "
        % (KILLERS[command])
        + "sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "out.pcap"
    argv = [command, "-q", "--jobs", "2", *inputs] + ([str(out)] if command == "filter" else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert proc.returncode == 2, proc.stderr
    assert "a worker process died" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_writer_stops_in_its_turn_once_abandoned(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out:
        turns = Turns(CONTEXT, out.fileno(), 0, 1)
        first = TurnWriter(turns, 0, str(tmp_path))
        first.write(b"in its turn")
        turns.abandon()
        with pytest.raises(Abandoned):
            first.write(b"after the stop")
    assert (tmp_path / "out").read_bytes() == b"in its turn"
