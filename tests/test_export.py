"""`scapy-geneve export PCAP... -o OUT`: every format holds what the columnar scan
says, from many files and globs, atomically, the same with --jobs."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from scapy_geneve.capture.columnar import COLUMNS, scan_table  # noqa: E402
from scapy_geneve.capture.pcapio import iter_records  # noqa: E402
from scapy_geneve.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PCAPS = sorted(str(p) for p in (ROOT / "pcaps").glob("*.pcap"))
GLOB = str(ROOT / "pcaps" / "*.pcap")


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def expected() -> "pa.Table":
    return scan_table(PCAPS)


class TestFormats:
    def test_parquet_from_a_glob(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, expected: "pa.Table"
    ) -> None:
        out = tmp_path / "fleet.parquet"
        code, _o, err = run_cli(capsys, "export", GLOB, "-o", str(out))
        assert code == 0
        assert (
            "%d packets from %d files written to %s (parquet)" % (expected.num_rows, len(PCAPS), out) in err
        )
        assert pq.read_table(out).equals(expected)

    @pytest.mark.parametrize("name", ["fleet.arrow", "fleet.feather"])
    def test_arrow_ipc(
        self, capsys: pytest.CaptureFixture, tmp_path: Path, name: str, expected: "pa.Table"
    ) -> None:
        out = tmp_path / name
        assert run_cli(capsys, "export", *PCAPS, "-o", str(out))[0] == 0
        with pa.memory_map(str(out)) as source:
            assert pa.ipc.open_file(source).read_all().equals(expected)
        import pyarrow.feather as feather

        assert feather.read_table(str(out)).equals(expected)

    def test_csv(self, capsys: pytest.CaptureFixture, tmp_path: Path, expected: "pa.Table") -> None:
        pandas = pytest.importorskip("pandas")
        out = tmp_path / "fleet.csv"
        assert run_cli(capsys, "export", GLOB, "-o", str(out))[0] == 0
        frame = pandas.read_csv(out, dtype={"vni": "UInt64"})  # 64-bit STT contexts exact
        assert list(frame.columns) == list(COLUMNS) and len(frame) == expected.num_rows
        want = expected.to_pylist()
        first = next(i for i, row in enumerate(want) if row["options"])
        options = json.loads(frame.loc[first, "options"])
        assert options[0]["class"] == want[first]["options"][0]["class"]
        assert options[0]["data"] == want[first]["options"][0]["data"].hex()
        assert frame["vni"].dropna().tolist() == [row["vni"] for row in want if row["vni"] is not None]

    def test_json_lines(self, capsys: pytest.CaptureFixture, tmp_path: Path, expected: "pa.Table") -> None:
        out = tmp_path / "fleet.jsonl"
        assert run_cli(capsys, "export", GLOB, "-o", str(out))[0] == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        want = expected.to_pylist()
        assert len(rows) == len(want)
        for row, ref in zip(rows, want):
            assert (row["file"], row["number"], row["kind"], row["vni"]) == (
                ref["file"],
                ref["number"],
                ref["kind"],
                ref["vni"],
            )
            assert [o["data"] for o in row["options"]] == [o["data"].hex() for o in ref["options"]]
        assert rows[0]["timestamp"].startswith("2025-11-24T16:00:00")

    def test_F_and_columns(self, capsys: pytest.CaptureFixture, tmp_path: Path, expected: "pa.Table") -> None:
        out = tmp_path / "fleet.data"
        code, _o, _e = run_cli(
            capsys, "export", GLOB, "-o", str(out), "-F", "parquet", "--columns", "vni,kind,wirelen"
        )
        assert code == 0
        assert pq.read_table(out).equals(expected.select(["vni", "kind", "wirelen"]))

    @pytest.mark.parametrize(
        "argv, message",
        [
            (["-o", "fleet.data"], "cannot tell the format from"),
            (["-o", "fleet.parquet", "--columns", "vni,nope"], "unknown column nope"),
            (["-o", "fleet.parquet", "--jobs", "0"], "must be at least 1"),
        ],
    )
    def test_usage_errors(
        self,
        capsys: pytest.CaptureFixture,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        argv: List[str],
        message: str,
    ) -> None:
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as exc:
            main(["export", GLOB] + argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err
        assert os.listdir(tmp_path) == []


class TestParquetEncoding:
    """zstd; a dictionary for every column but the ones that grow packet by packet
    (number, offset, timestamp: delta-encoded); statistics kept; types as the scan's."""

    @pytest.fixture(scope="class")
    def fleet(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        out = tmp_path_factory.mktemp("encoding") / "fleet.parquet"
        assert main(["export", "-q", GLOB, "-o", str(out)]) == 0
        return out

    def test_encodings_by_column(self, fleet: Path) -> None:
        from scapy_geneve.cli.export import SEQUENCES

        meta = pq.ParquetFile(fleet).metadata
        for group in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(group).column(i)
                top = column.path_in_schema.split(".")[0]
                assert column.compression == "ZSTD", column.path_in_schema
                if top in SEQUENCES:
                    assert "DELTA_BINARY_PACKED" in column.encodings, top
                    assert "RLE_DICTIONARY" not in column.encodings, top
                    assert column.statistics is not None and column.statistics.has_min_max, top
                elif column.physical_type != "BOOLEAN":  # Parquet has no dictionary for booleans
                    assert "RLE_DICTIONARY" in column.encodings, column.path_in_schema

    def test_types_are_the_scans(self, fleet: Path, expected: "pa.Table") -> None:
        schema = pq.read_schema(fleet)
        assert schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
        assert schema.field("vni").type == pa.uint64()
        assert schema.equals(expected.schema)

    def test_duckdb_and_pandas_read_it(self, fleet: Path, expected: "pa.Table") -> None:
        duckdb = pytest.importorskip("duckdb")
        pandas = pytest.importorskip("pandas")
        want = expected.to_pylist()
        got = duckdb.sql(
            "SELECT count(*), sum(number), max(vni), count(DISTINCT timestamp) FROM '%s'" % fleet
        ).fetchall()[0]
        assert got == (
            len(want),
            sum(r["number"] for r in want),
            max(r["vni"] for r in want if r["vni"] is not None),
            len({r["timestamp"] for r in want if r["timestamp"] is not None}),
        )
        frame = pandas.read_parquet(fleet)
        assert len(frame) == len(want) and frame["number"].tolist() == [r["number"] for r in want]


class TestManyFilesAndJobs:
    def test_jobs_write_the_same_table(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
        assert run_cli(capsys, "export", GLOB, "-o", str(one))[0] == 0
        assert run_cli(capsys, "export", "--jobs", "2", GLOB, "-o", str(two))[0] == 0
        assert pq.read_table(one).equals(pq.read_table(two))
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    def test_row_groups_are_streamed(
        self,
        capsys: pytest.CaptureFixture,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        expected: "pa.Table",
    ) -> None:
        from scapy_geneve.cli import export

        monkeypatch.setattr(export, "ROW_GROUP", 10)
        out = tmp_path / "small-groups.parquet"
        assert run_cli(capsys, "export", GLOB, "-o", str(out))[0] == 0
        meta = pq.ParquetFile(out).metadata
        assert meta.num_row_groups >= expected.num_rows // 20
        assert pq.read_table(out).equals(expected)


class TestSafety:
    def test_damaged_input_leaves_out_alone(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        source = Path(PCAPS[0])
        offsets = [r.offset for r in iter_records(source)]
        damaged = tmp_path / "damaged.pcap"
        damaged.write_bytes(source.read_bytes()[: offsets[1] + 5])
        out = tmp_path / "out.parquet"
        out.write_bytes(b"previous")
        for jobs in ("1", "2"):
            code, _o, err = run_cli(capsys, "export", "-j", jobs, PCAPS[1], str(damaged), "-o", str(out))
            assert code == 2 and "%s, offset %d, packet 2" % (damaged, offsets[1]) in err
            assert out.read_bytes() == b"previous" and "Traceback" not in err
            assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.pcap", "out.parquet"]

    def test_never_over_an_input(self, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
        capture = tmp_path / "in.parquet"  # a capture, oddly named
        capture.write_bytes(Path(PCAPS[0]).read_bytes())
        before = capture.read_bytes()
        code, _o, err = run_cli(capsys, "export", str(capture), "-o", str(capture))
        assert code == 2 and "refusing to overwrite the input file" in err
        assert capture.read_bytes() == before

    def test_missing_pyarrow_names_the_extra(self, tmp_path: Path) -> None:
        code = (
            "import sys; sys.modules['pyarrow'] = None\n"
            "from scapy_geneve.cli import main\n"
            "sys.exit(main(['export', %r, '-o', %r]))" % (PCAPS[0], str(tmp_path / "x.parquet"))
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode == 2
        assert "pip install 'scapy-geneve[analytics]'" in res.stderr
        assert "Traceback" not in res.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    import functools

    from scapy_geneve.cli import _common, export

    term = _Terminal()
    monkeypatch.setattr(export, "Progress", functools.partial(_common.Progress, delay=0.0, stream=term))
    assert main(["export", GLOB, "-o", str(tmp_path / "x.parquet")]) == 0
    capsys.readouterr()
    assert "export [" in term.getvalue()
