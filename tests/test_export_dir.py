"""`scapy-geneve export PCAP... -o DIR/`: one table per input, named after it, each
written whole or not at all, by the process that scans it.

The spec, test by test:

- OUT ending in ``/`` (or an existing directory) is a directory, created if
  missing; ``a.pcap`` and ``a.pcap.gz`` become ``a.parquet`` (``-F`` chooses the
  format); names that collide get ``-2``, ``-3``... in input order;
- each table is what the columnar scan says about its input, so DuckDB's
  ``read_parquet('DIR/*.parquet')`` is the single-file export, and ``--jobs 2``
  writes the same files as ``--jobs 1``;
- a damaged input leaves no table, the others are written, exit 2 naming file,
  offset and packet; a signal keeps the finished tables and no temporary file;
- never over an input, never standard input.
"""

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from .conftest import reaped
from .test_export import GLOB, PCAPS, ROOT, pa, pq, run_cli  # pyarrow or skip, as there

from scapy_geneve.capture.columnar import scan_table
from scapy_geneve.capture.interrupt import Interrupted
from scapy_geneve.capture.pcapio import iter_records
from scapy_geneve.cli import main
from scapy_geneve.cli.export import output_names


def listing(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def temporaries(folder: Path) -> List[str]:
    return [name for name in listing(folder) if name.startswith(".") or name.endswith(".part")]


def damaged_copy(folder: Path) -> Tuple[Path, int]:
    """A capture cut in its second packet, and that packet's offset."""
    source = Path(PCAPS[0])
    offsets = [r.offset for r in iter_records(source)]
    damaged = folder / "damaged.pcap"
    damaged.write_bytes(source.read_bytes()[: offsets[1] + 5])
    return damaged, offsets[1]


class TestNames:
    @pytest.mark.parametrize(
        "inputs, names",
        [
            (["a.pcap"], ["a.parquet"]),
            (["dir/a.pcap.gz"], ["a.parquet"]),
            (["a.pcapng", "capture"], ["a.parquet", "capture.parquet"]),
            (["x/a.pcap", "y/a.pcap", "a.pcap.gz"], ["a.parquet", "a-2.parquet", "a-3.parquet"]),
            # an input's own name is never given to another: a-2.pcap keeps a-2
            (["a.pcap", "a.pcapng", "a-2.pcap"], ["a.parquet", "a-3.parquet", "a-2.parquet"]),
            # case-insensitive file systems: A and a would be one file
            (["A.pcap", "a.pcap"], ["A.parquet", "a-2.parquet"]),
        ],
    )
    def test_named_after_the_input_collisions_numbered_in_input_order(
        self, inputs: List[str], names: List[str]
    ) -> None:
        assert output_names(inputs, ".parquet") == names

    def test_names_depend_only_on_the_inputs(self) -> None:
        inputs = ["x/a.pcap", "a.pcap", "y/a.pcap.gz", "b.pcap", "a-2.pcapng"]
        assert output_names(inputs, ".csv") == output_names(list(inputs), ".csv")
        assert len(set(output_names(inputs, ".csv"))) == len(inputs)

    def test_colliding_inputs_become_separate_files(
        self, capsys: pytest.CaptureFixture, tmp_path: Path
    ) -> None:
        (tmp_path / "x").mkdir()
        (tmp_path / "y").mkdir()
        one, two = tmp_path / "x" / "a.pcap", tmp_path / "y" / "a.pcap"
        shutil.copy(PCAPS[0], one)
        shutil.copy(PCAPS[1], two)
        zipped = tmp_path / "a.pcap.gz"
        zipped.write_bytes(gzip.compress(Path(PCAPS[2]).read_bytes()))
        out = tmp_path / "out"
        assert run_cli(capsys, "export", str(one), str(two), str(zipped), "-o", str(out) + "/")[0] == 0
        assert listing(out) == ["a-2.parquet", "a-3.parquet", "a.parquet"]
        for name, source in [("a.parquet", one), ("a-2.parquet", two), ("a-3.parquet", zipped)]:
            assert pq.read_table(out / name).equals(scan_table(str(source)))


class TestOneTablePerInput:
    def test_a_directory_is_created_with_one_parquet_per_input(
        self, capsys: pytest.CaptureFixture, tmp_path: Path
    ) -> None:
        out = tmp_path / "new" / "fleet"
        code, _o, err = run_cli(capsys, "export", GLOB, "-o", str(out) + "/")
        assert code == 0 and temporaries(out) == []
        assert listing(out) == sorted(Path(p).stem + ".parquet" for p in PCAPS)
        for path in PCAPS:
            table = pq.read_table(out / (Path(path).stem + ".parquet"))
            assert table.equals(scan_table(path))
            assert set(table.column("file").to_pylist()) <= {path}  # the input, as given
        rows = sum(scan_table(p).num_rows for p in PCAPS)
        assert "%d packets from %d files written to %s/" % (rows, len(PCAPS), out) in err

    def test_an_existing_directory_needs_no_slash(
        self, capsys: pytest.CaptureFixture, tmp_path: Path
    ) -> None:
        assert run_cli(capsys, "export", PCAPS[0], "-o", str(tmp_path))[0] == 0
        assert listing(tmp_path) == [Path(PCAPS[0]).stem + ".parquet"]

    @pytest.mark.parametrize("fmt, suffix", [("arrow", ".arrow"), ("csv", ".csv"), ("jsonl", ".jsonl")])
    def test_F_chooses_the_format(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, fmt: str, suffix: str
    ) -> None:
        one = tmp_path / ("one" + suffix)
        out = tmp_path / "dir"
        assert run_cli(capsys, "export", "-F", fmt, PCAPS[0], PCAPS[1], "-o", str(out) + "/")[0] == 0
        assert listing(out) == sorted(Path(p).stem + suffix for p in PCAPS[:2])
        assert run_cli(capsys, "export", "-F", fmt, PCAPS[0], "-o", str(one))[0] == 0
        assert (out / (Path(PCAPS[0]).stem + suffix)).read_bytes() == one.read_bytes()

    def test_columns_apply_to_every_file(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        out = tmp_path / "dir"
        assert run_cli(capsys, "export", GLOB, "--columns", "vni,kind", "-o", str(out) + "/")[0] == 0
        for path in PCAPS:
            table = pq.read_table(out / (Path(path).stem + ".parquet"))
            assert table.equals(scan_table(path, ["vni", "kind"]))


class TestTheUnionIsTheSingleFileExport:
    @pytest.fixture(scope="class")
    def exports(self, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
        folder = tmp_path_factory.mktemp("union")
        single, directory = folder / "fleet.parquet", folder / "fleet"
        assert main(["export", "-q", GLOB, "-o", str(single)]) == 0
        assert main(["export", "-q", "--jobs", "2", GLOB, "-o", str(directory) + "/"]) == 0
        return single, directory

    def test_same_rows_same_values_file_by_file(self, exports: Tuple[Path, Path]) -> None:
        single, directory = exports
        whole = pq.read_table(single)
        for path in PCAPS:
            part = pq.read_table(directory / (Path(path).stem + ".parquet"))
            mask = pa.compute.equal(whole.column("file"), path)
            assert part.equals(whole.filter(mask).combine_chunks().cast(part.schema))
        assert sum(pq.ParquetFile(p).metadata.num_rows for p in directory.iterdir()) == whole.num_rows

    def test_duckdb_reads_the_directory_as_the_single_file(self, exports: Tuple[Path, Path]) -> None:
        duckdb = pytest.importorskip("duckdb")
        single, directory = exports
        query = "SELECT * EXCLUDE (kind), kind::VARCHAR AS kind FROM read_parquet('%s') ORDER BY file, number"
        many = duckdb.sql(query % (str(directory) + "/*.parquet")).fetchall()
        one = duckdb.sql(query % single).fetchall()
        assert many == one and len(one) == pq.ParquetFile(single).metadata.num_rows

    def test_jobs_2_writes_the_files_jobs_1_writes(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, exports: Tuple[Path, Path]
    ) -> None:
        _single, two = exports
        one = tmp_path / "one"
        assert run_cli(capsys, "export", GLOB, "-o", str(one) + "/")[0] == 0
        assert listing(one) == listing(two)
        for name in listing(one):
            assert pq.read_table(one / name).equals(pq.read_table(two / name))


class TestSafety:
    @pytest.mark.parametrize("jobs", ["1", "2"])
    def test_a_damaged_input_leaves_no_table_and_the_others_are_written(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, jobs: str
    ) -> None:
        damaged, offset = damaged_copy(tmp_path)
        out = tmp_path / "out"
        code, _o, err = run_cli(
            capsys, "export", "-j", jobs, PCAPS[1], str(damaged), PCAPS[2], "-o", str(out) + "/"
        )
        assert code == 2 and "%s, offset %d, packet 2" % (damaged, offset) in err
        assert "Traceback" not in err
        assert listing(out) == sorted(Path(p).stem + ".parquet" for p in PCAPS[1:3])
        for path in PCAPS[1:3]:
            assert pq.read_table(out / (Path(path).stem + ".parquet")).equals(scan_table(path))

    def test_every_damaged_input_is_named(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        damaged, offset = damaged_copy(tmp_path)
        again = tmp_path / "again.pcap"
        shutil.copy(damaged, again)
        code, _o, err = run_cli(capsys, "export", str(damaged), str(again), "-o", str(tmp_path / "out") + "/")
        assert code == 2 and "%s, offset %d, packet 2" % (damaged, offset) in err
        assert "also not written: %s, offset %d, packet 2" % (again, offset) in err
        assert listing(tmp_path / "out") == []

    def test_never_over_an_input(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        capture = tmp_path / "in.parquet"  # a capture, oddly named, where its table would go
        capture.write_bytes(Path(PCAPS[0]).read_bytes())
        before = capture.read_bytes()
        code, _o, err = run_cli(capsys, "export", PCAPS[1], str(capture), "-o", str(tmp_path))
        assert code == 2 and "refusing to overwrite the input file" in err
        assert capture.read_bytes() == before
        assert listing(tmp_path) == ["in.parquet"]  # checked before anything is written

    def test_an_earlier_table_is_replaced_whole(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        stale = tmp_path / (Path(PCAPS[0]).stem + ".parquet")
        stale.write_bytes(b"previous")
        assert run_cli(capsys, "export", PCAPS[0], "-o", str(tmp_path))[0] == 0
        assert pq.read_table(stale).equals(scan_table(PCAPS[0]))
        assert temporaries(tmp_path) == []

    def test_standard_input_is_refused(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as exc:
            main(["export", "-", "-o", "out/"])
        err = capsys.readouterr().err
        assert exc.value.code == 2
        assert "standard input (-) cannot be exported to a directory (OUT out/)" in err
        assert os.listdir(tmp_path) == []

    def test_a_missing_input_writes_nothing(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        missing = tmp_path / "missing.pcap"
        code, _o, err = run_cli(capsys, "export", PCAPS[0], str(missing), "-o", str(tmp_path / "out") + "/")
        assert code == 2 and str(missing) in err
        assert listing(tmp_path) == []

    def test_a_file_is_not_a_directory(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        plain = tmp_path / "plain"
        plain.write_bytes(b"")
        code, _o, err = run_cli(capsys, "export", PCAPS[0], "-o", str(plain) + "/")
        assert code == 2 and "%s/: is not a directory" % plain in err


class TestRefusedBeforeAnythingIsWritten:
    """What cannot work is found before the first table: one line naming it, exit 2."""

    def check(self, capsys: pytest.CaptureFixture, argv: List[str], message: str) -> str:
        code, _o, err = run_cli(capsys, "export", *argv)
        assert code == 2 and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        return err

    def test_a_directory_where_a_table_goes(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        blocked = tmp_path / (Path(PCAPS[1]).stem + ".parquet")
        blocked.mkdir()
        self.check(
            capsys,
            [PCAPS[0], PCAPS[1], "-o", str(tmp_path)],
            "%s: is a directory, where the table of %s goes" % (blocked, PCAPS[1]),
        )
        assert listing(tmp_path) == [blocked.name] and listing(blocked) == []

    def test_a_directory_as_an_input(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        folder = tmp_path / "captures"
        folder.mkdir()
        out = tmp_path / "out"
        self.check(capsys, [PCAPS[0], str(folder), "-o", str(out) + "/"], "%s: is a directory" % folder)
        assert not out.exists()

    def test_a_table_name_too_long(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        long = tmp_path / ("x" * 250 + ".pcap")  # a legal name; x*250 + .parquet is not
        shutil.copy(PCAPS[1], long)
        out = tmp_path / "out"
        self.check(capsys, [PCAPS[0], str(long), "-o", str(out) + "/"], "file name too long for the table of")
        assert not out.exists()

    def test_a_directory_not_writable(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a user, not root
        self.check(capsys, [PCAPS[0], "-o", str(tmp_path)], "%s: directory is not writable" % tmp_path)
        assert listing(tmp_path) == []


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unreadable_input_is_named_and_the_others_are_written(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    """An OSError on one input (EACCES here) is that input's, as damage is: the
    others' tables are written, exit 2 naming it."""
    from scapy_geneve.capture import columnar

    real = columnar.scan_batches

    def scan_batches(path, columns=None, **kwargs):  # type: ignore[no-untyped-def]
        if str(path) == PCAPS[1]:
            raise PermissionError(13, "Permission denied", path)
        return real(path, columns, **kwargs)

    monkeypatch.setattr(columnar, "scan_batches", scan_batches)
    out = tmp_path / "out"
    code, _o, err = run_cli(capsys, "export", "-j", jobs, *PCAPS[:3], "-o", str(out) + "/")
    assert code == 2 and "%s: Permission denied" % PCAPS[1] in err and "Traceback" not in err
    assert listing(out) == sorted(Path(p).stem + ".parquet" for p in (PCAPS[0], PCAPS[2]))


def _stop_at_second_input(monkeypatch: pytest.MonkeyPatch, second: str) -> None:
    """The scan of SECOND yields one batch, then SIGINT arrives."""
    from scapy_geneve.capture import columnar

    real = columnar.scan_batches

    def scan_batches(path, columns=None, **kwargs):  # type: ignore[no-untyped-def]
        for batch in real(path, columns, **kwargs):
            yield batch
            if str(path) == second:
                raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(columnar, "scan_batches", scan_batches)


class TestStopped:
    @pytest.mark.parametrize("jobs", ["1", "2"])
    def test_finished_tables_stay_the_unfinished_one_goes(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
    ) -> None:
        _stop_at_second_input(monkeypatch, PCAPS[1])
        out = tmp_path / "out"
        code, _o, err = run_cli(capsys, "export", "-j", jobs, *PCAPS[:3], "-o", str(out) + "/")
        assert code == 130 and "stopped;" in err
        names = listing(out)
        assert Path(PCAPS[0]).stem + ".parquet" in names
        assert Path(PCAPS[1]).stem + ".parquet" not in names and temporaries(out) == []
        for name in names:  # whatever was finished is whole
            source = next(p for p in PCAPS if Path(p).stem + ".parquet" == name)
            assert pq.read_table(out / name).equals(scan_table(source))

    @pytest.mark.parametrize("jobs", ["1", "2"])
    def test_ctrl_c_while_an_input_is_read(self, tmp_path: Path, jobs: str) -> None:
        """A real SIGINT to the process group (a terminal's Ctrl-C), the second input
        a FIFO nobody writes: its read blocks, its temporary table exists."""
        fifo = tmp_path / "live.pcap"
        os.mkfifo(fifo)
        out = tmp_path / "out"
        argv = [
            sys.executable,
            "-m",
            "scapy_geneve",
            "export",
            "-j",
            jobs,
            PCAPS[0],
            str(fifo),
            "-o",
            str(out) + "/",
        ]
        popen = subprocess.Popen(
            argv, cwd=str(ROOT), start_new_session=True, stderr=subprocess.PIPE, text=True
        )
        with reaped(popen) as proc:
            deadline = time.monotonic() + 60
            first = out / (Path(PCAPS[0]).stem + ".parquet")
            while not (first.exists() and any(n.startswith(".live.parquet.") for n in os.listdir(out))):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "Traceback" not in err
        assert listing(out) == [first.name]
        assert pq.read_table(first).equals(scan_table(PCAPS[0]))


def _children(pid: int) -> List[int]:
    with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
        return [int(word) for word in handle.read().split()]


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: its new parent may never reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60  # a shared 2-core machine: generous
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _stop_survivors(pids: List[int]) -> bool:
    """SIGTERM to those of PIDS still there (the FIFO's worker, now waiting for work,
    or still on its way back to waiting); True when none is left."""
    left = [pid for pid in pids if not _gone(pid)]
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    return not left


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc")
def test_workers_orphaned_by_a_killed_parent_still_stop_on_sigterm(tmp_path: Path) -> None:
    """Between files a worker leaves signals to its parent; once the parent is
    gone (SIGKILL, the OOM killer) nothing would ever stop it, so it must not
    ignore SIGTERM then.  Worker 1 finished the first table and waits; worker 2
    reads a FIFO nobody writes."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    first = out / (Path(PCAPS[0]).stem + ".parquet")
    argv = [sys.executable, "-m", "scapy_geneve", "export", "-q", "-j", "2", PCAPS[0], str(fifo)]
    proc = subprocess.Popen(argv + ["-o", str(out) + "/"], cwd=str(ROOT), start_new_session=True)
    workers: List[int] = []
    try:
        _wait_for(lambda: first.exists() and len(temporaries(out)) == 1, "the FIFO's table begun")
        workers = _children(proc.pid)
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        for pid in workers:
            os.kill(pid, signal.SIGTERM)  # the FIFO's worker stops its file, the other exits
        _wait_for(lambda: temporaries(out) == [], "the unfinished table discarded")
        _wait_for(lambda: _stop_survivors(workers), "the orphaned workers gone")
    finally:
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert listing(out) == [first.name]
    assert pq.read_table(first).equals(scan_table(PCAPS[0]))


def test_help_says_what_a_directory_output_does(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ends in / (or is a directory)" in text and "one table per input" in text
