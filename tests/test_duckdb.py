"""DuckDB on the exported Parquet: top identifiers, option classes and critical
options equal ``scapy-geneve stats`` (a newcomer's query, as the README shows)."""

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")

from scapy_geneve.cli import main  # noqa: E402

from tests.test_dask import _frame  # noqa: E402  (the same generated traffic)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import random

    from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapWriter

    rng = random.Random(5)
    path = tmp_path_factory.mktemp("captures")
    for k in range(3):
        with open(path / ("mirror-%d.pcap" % k), "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_ETHERNET)
            for i in range(80):
                writer.write(_frame(rng), 1_700_000_000_000_000_000 + (k * 100 + i) * 1000)
    return path


@pytest.fixture(scope="module")
def exported(folder: Path) -> Dict[str, Any]:
    parquet = folder.parent / "fleet.parquet"
    assert main(["export", "-q", str(folder / "*.pcap"), "-o", str(parquet)]) == 0
    return {"parquet": str(parquet), "pattern": str(folder / "*.pcap")}


def _stats(pattern: str, capsys: pytest.CaptureFixture) -> Dict[str, Any]:
    assert main(["stats", "--json", pattern]) == 0
    data: Dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def _rows(query: str, parquet: str) -> List[Any]:
    rows: List[Any] = duckdb.sql(query.replace("CAPTURES", "read_parquet('%s')" % parquet)).fetchall()
    return rows


def test_top_identifiers(exported: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    rows = _rows(
        "SELECT kind, vni, count(*) AS packets, sum(wirelen) AS bytes FROM CAPTURES "
        "WHERE vni IS NOT NULL GROUP BY kind, vni ORDER BY packets DESC, kind, vni",
        exported["parquet"],
    )
    stats = _stats(exported["pattern"], capsys)
    assert {(k, v): (p, b) for k, v, p, b in rows} == {
        (e["kind"], e["vni"]): (e["packets"], e["bytes"]) for e in stats["vnis"]
    }
    assert rows[0][2] == stats["vnis"][0]["packets"]


def test_option_classes(exported: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    """Per class: the packets carrying at least one option of it, and their bytes."""
    rows = _rows(
        "SELECT class, count(*), sum(wirelen) FROM ("
        "  SELECT DISTINCT file, number, wirelen, "
        "         unnest(list_distinct(list_transform(options, lambda o: o.class))) AS class"
        "  FROM CAPTURES) GROUP BY class",
        exported["parquet"],
    )
    stats = _stats(exported["pattern"], capsys)
    assert {c: (p, b) for c, p, b in rows} == {
        e["class"]: (e["packets"], e["bytes"]) for e in stats["option_classes"]
    }


def test_critical_options(exported: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    rows = _rows(
        "SELECT count(*) FILTER (WHERE o.critical) FROM (SELECT unnest(options) AS o FROM CAPTURES)",
        exported["parquet"],
    )
    packets = _rows("SELECT count(*) FROM CAPTURES WHERE critical", exported["parquet"])
    stats = _stats(exported["pattern"], capsys)
    assert rows[0][0] == stats["critical"]["critical_options"]
    assert packets[0][0] == stats["critical"]["c_bit_packets"]
    per_option = _rows(
        "SELECT o.class, o.type, count(*) FROM (SELECT unnest(options) AS o FROM CAPTURES) GROUP BY ALL",
        exported["parquet"],
    )
    assert {(c, t): n for c, t, n in per_option} == {
        (e["class"], e["type"]): e["count"] for e in stats["options"]
    }
