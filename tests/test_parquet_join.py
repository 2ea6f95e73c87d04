"""Parquet parts encoded apart, joined by their footers (capture/parquet_join.py), and
``export --jobs N`` to one Parquet file, which joins the parts its workers encode.

The joined file reads back (pyarrow, DuckDB) as the parts' tables one after the
other; a footer read and written back is the same bytes; garbage is refused with
an error, never a crash."""

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

from scapy_geneve.capture import parquet_join  # noqa: E402
from scapy_geneve.capture.columnar import scan_batches  # noqa: E402
from scapy_geneve.cli import export as export_cli  # noqa: E402
from scapy_geneve.cli import main  # noqa: E402
from scapy_geneve.cli.export import parquet_options  # noqa: E402
from tests.test_ordered import write_in_turn_then_stop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PCAPS = sorted(str(p) for p in (ROOT / "pcaps").glob("*.pcap"))
TABLE = pa.concat_tables(pa.Table.from_batches(list(scan_batches(path))) for path in PCAPS)


def _parquet(table: Any, row_group: int, **options: Any) -> bytes:
    sink = pa.BufferOutputStream()
    writer = pq.ParquetWriter(sink, table.schema, **dict(parquet_options(table.schema), **options))
    writer.write_table(table, row_group_size=max(row_group, 1))
    writer.close()
    return bytes(sink.getvalue().to_pybytes())


def _join(parts: List[bytes]) -> bytes:
    out = bytearray(parquet_join.MAGIC)
    starts, footers = [], []
    for part in parts:
        chunks, footer = parquet_join.split(part)
        starts.append(len(out))
        out += chunks
        footers.append(footer)
    return bytes(out + parquet_join.join_footers(footers, starts))


OPTIONS = [{}, {"write_statistics": False}, {"compression": "none"}]


@settings(max_examples=12, deadline=None)
@given(
    cuts=st.lists(st.integers(0, TABLE.num_rows), max_size=5),
    row_group=st.integers(1, 40),
    options=st.sampled_from(OPTIONS),
)
def test_joined_parts_read_as_one_table(
    tmp_path_factory: pytest.TempPathFactory, cuts: List[int], row_group: int, options: Dict[str, Any]
) -> None:
    """Cut the packets of every bundled capture anywhere, encode each part apart
    (row groups of any size; statistics, compression or not): the joined file is
    the whole table, row group after row group, each column chunk's file_offset 0
    as pyarrow writes it (the metadata is in the footer)."""
    bounds = sorted({0, TABLE.num_rows, *cuts})
    tables = [TABLE.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
    parts = [_parquet(table, row_group, **options) for table in tables]
    path = tmp_path_factory.mktemp("join") / "joined.parquet"
    path.write_bytes(_join(parts))
    assert pq.read_table(path).equals(TABLE)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == TABLE.num_rows
    groups = [pq.ParquetFile(pa.BufferReader(part)).metadata.num_row_groups for part in parts]
    assert meta.num_row_groups == sum(groups)
    chunks = [
        meta.row_group(i).column(j) for i in range(meta.num_row_groups) for j in range(meta.num_columns)
    ]
    assert {chunk.file_offset for chunk in chunks} == {0}
    assert all(4 <= chunk.data_page_offset < path.stat().st_size for chunk in chunks)


def test_duckdb_reads_a_joined_file(tmp_path: Path) -> None:
    path = tmp_path / "joined.parquet"
    path.write_bytes(_join([_parquet(TABLE.slice(lo, 9), 4) for lo in range(0, TABLE.num_rows, 9)]))
    query = "select count(*), count(vni), sum(wirelen) from read_parquet('%s')" % path
    vnis = TABLE.num_rows - TABLE["vni"].null_count
    assert duckdb.sql(query).fetchall() == [(TABLE.num_rows, vnis, sum(TABLE["wirelen"].to_pylist()))]


def test_a_footer_reads_and_writes_back_byte_for_byte() -> None:
    for options in ({}, {"write_statistics": False}, {"write_page_index": True}, {"use_dictionary": False}):
        footer = parquet_join.split(_parquet(TABLE, 9, **options))[1]
        assert parquet_join.encode(parquet_join.decode(footer)) == footer


def test_the_compact_protocol_by_hand() -> None:
    """Annotated bytes: FileMetaData { 1: i32 version = 2, 3: i64 num_rows = -1 (zigzag
    1), 6: string created_by = "x", 40: bool = true (an id 34 past the last: written
    in full), 41: list<i32> [1, 2] }."""
    data = bytes.fromhex(
        "15 04"  # field 1 (delta 1), i32: zigzag 4 = 2
        " 26 01"  # field 3 (delta 2), i64: zigzag 1 = -1
        " 38 01 78"  # field 6 (delta 3), binary: length 1, "x"
        " 01 50"  # bool true, long form: type 1, then the id, zigzag 80 = 40
        " 19 25 02 04"  # field 41 (delta 1), list: 2 elements of i32, zigzag 2 4 = 1 2
        " 00"  # stop
    )
    tree = parquet_join.decode(data)
    assert tree == [[1, 5, 2], [3, 6, -1], [6, 8, b"x"], [40, 1, True], [41, 9, (5, [1, 2])]]
    assert parquet_join.encode(tree) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_refused_never_a_crash(data: bytes) -> None:
    try:
        parquet_join.decode(data)
    except parquet_join.ParquetError:
        pass


def test_deep_nesting_and_cut_footers_are_refused() -> None:
    with pytest.raises(parquet_join.ParquetError, match="nested deeper"):
        parquet_join.decode(b"\x19\x19" + b"\x19" * 100_000)  # lists of lists of lists...
    footer = parquet_join.split(_parquet(TABLE, 9))[1]
    with pytest.raises(parquet_join.ParquetError, match="cut short"):
        parquet_join.decode(footer[:-5])
    with pytest.raises(parquet_join.ParquetError, match="not a Parquet file"):
        parquet_join.split(b"PAR1 not a footer")
    with pytest.raises(parquet_join.ParquetError, match="footer"):
        parquet_join.footer_of(b"junk" + parquet_join.MAGIC)
    for options in ({"write_page_index": True}, {"bloom_filter_options": {"vni": {}}}):
        indexed = parquet_join.split(_parquet(TABLE, 9, **options))[1]
        with pytest.raises(parquet_join.ParquetError, match="page index|bloom"):
            parquet_join.join_footers([indexed, indexed], [4, 100])
    tree = parquet_join.decode(footer)
    odd = parquet_join.encode([[4, parquet_join.I64, 7] if f[0] == 4 else f for f in tree])  # row_groups: 7
    with pytest.raises(parquet_join.ParquetError, match="unexpected shape"):
        parquet_join.join_footers([footer, odd], [4, 100])
    other = parquet_join.split(_parquet(TABLE.select(["number"]), 9))[1]
    with pytest.raises(parquet_join.ParquetError, match="schemas differ"):
        parquet_join.join_footers([footer, other], [4, 100])


# -- export --jobs N to one Parquet file -----------------------------------------------------
def test_export_jobs_write_the_table_of_one_process(tmp_path: Path) -> None:
    """Every bundled capture, in input order, row groups of each input's own."""
    one, two, three = (tmp_path / ("j%d.parquet" % k) for k in (1, 2, 3))
    for path, jobs in ((one, 1), (two, 2), (three, 3)):
        assert main(["export", "-q", "--jobs", str(jobs), *PCAPS, "-o", str(path)]) == 0
    table = pq.read_table(one)
    assert pq.read_table(two).equals(table) and pq.read_table(three).equals(table)
    assert pq.ParquetFile(two).metadata.num_row_groups == len(PCAPS)
    assert sorted(os.listdir(tmp_path)) == ["j1.parquet", "j2.parquet", "j3.parquet"]


def _stopped_in_its_turn(item: Tuple[int, str], *args: Any) -> Any:
    """(worker) Input 2 writes junk in its turn, then is stopped; the others as usual."""
    if item[0] != 2:
        return REAL_PART_IN_TURN(item, *args)
    write_in_turn_then_stop(item[0], args[-1], JUNK)


REAL_PART_IN_TURN = export_cli._part_in_turn
JUNK = b"\xee" * 200_000  # longer than the footer written over it


def test_a_stop_keeps_a_whole_file_of_the_inputs_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the third input's worker writes: OUT is a whole Parquet file of
    the first two inputs (as a stop with --jobs 1 keeps the rows read)."""
    monkeypatch.setattr(export_cli, "_part_in_turn", _stopped_in_its_turn)
    out = tmp_path / "out.parquet"
    assert main(["export", "-q", "--jobs", "2", *PCAPS[:4], "-o", str(out)]) == 130
    want = pa.concat_tables(pa.Table.from_batches(list(scan_batches(p))) for p in PCAPS[:2])
    assert pq.read_table(out).equals(want)
    assert JUNK[:64] not in out.read_bytes()  # what the stopped worker wrote was cut off
