"""Dask over several captures on a real (local) cluster: 2 worker processes on
loopback, one partition per file; per-identifier and per-option counts equal
``scapy-geneve stats`` exactly."""

import random
from typing import Any, Dict, List, Tuple

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

from scapy_geneve.capture.dask_frame import read_captures, read_options  # noqa: E402
from scapy_geneve.capture.parallel import stats_files  # noqa: E402
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapWriter  # noqa: E402
from scapy_geneve.layers.geneve import Geneve, GeneveOption  # noqa: E402
from scapy_geneve.layers.stt import STT  # noqa: E402

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
INNER = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)


def _frame(rng: random.Random) -> bytes:
    """Geneve with 0-3 options of a dozen kinds (some repeated in one packet), VXLAN on
    48879 (a default port), an STT frame with a 64-bit context, or plain UDP."""
    outer = Ether(**MACS) / IP(src="192.0.2.%d" % rng.randrange(1, 9), dst="192.0.2.100")
    pick = rng.random()
    if pick < 0.7:
        options = [
            GeneveOption(
                classid=rng.choice((0x0102, 0x0103, 0x0108, 0xFFFF)),
                type=rng.choice((0x01, 0x02, 0x80, 0x81)),
                data=bytes(4 * rng.randrange(0, 4)),
            )
            for _ in range(rng.randrange(0, 4))
        ]
        return bytes(
            outer
            / UDP(sport=rng.randrange(49152, 65535), dport=6081)
            / Geneve(
                vni=rng.choice((1, 2, 0xFFFFFF)),
                options=options,
                critical=any(o.type & 0x80 for o in options),
            )
            / INNER
        )
    if pick < 0.85:
        return bytes(outer / UDP(sport=5, dport=48879) / VXLAN(flags=8, vni=rng.choice((1, 7))) / INNER)
    if pick < 0.95:
        return bytes(
            outer
            / TCP(sport=6, dport=7471, seq=0, ack=rng.randrange(9))
            / STT(context_id=0xFEDCBA9876543210)
            / INNER
        )
    return bytes(outer / UDP(sport=7, dport=53) / (b"\x00" * 12))


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    rng = random.Random(11)
    folder = tmp_path_factory.mktemp("fleet")
    paths = []
    for k in range(4):
        path = folder / ("uplink-%d.pcap" % k)
        with open(path, "wb") as handle:
            writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=True)
            for i in range(60 + 20 * k):
                writer.write(_frame(rng), 1_700_000_000_000_000_000 + (k * 1000 + i) * 1000)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def client() -> Any:
    """A LocalCluster: 2 worker processes, one thread each, on loopback, no dashboard."""
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def _expected(paths: List[str]) -> Dict[str, Any]:
    stats, _files = stats_files(paths)
    return stats.to_dict()


def test_per_identifier_counts_equal_stats(client: Any, captures: List[str]) -> None:
    frame = read_captures(captures, columns=["kind", "vni", "wirelen"])
    assert frame.npartitions == len(captures)
    with_id = frame[frame.vni.notnull()]
    got = (
        with_id.groupby(["kind", "vni"], observed=True)
        .wirelen.agg(["count", "sum"])
        .compute(scheduler=client)
    )
    table = {(kind, int(vni)): (int(row["count"]), int(row["sum"])) for (kind, vni), row in got.iterrows()}
    want = {(v["kind"], v["vni"]): (v["packets"], v["bytes"]) for v in _expected(captures)["vnis"]}
    assert table == want
    assert ("stt", 0xFEDCBA9876543210) in table  # 64 bits, exact
    assert ("vxlan", 7) in table  # 48879 is VXLAN by default


def test_per_option_counts_equal_stats(client: Any, captures: List[str]) -> None:
    options = read_options(captures)
    count = options.groupby(["class", "type"]).size().compute(scheduler=client)
    per_packet = options.drop_duplicates(["file", "number", "class", "type"])
    packets = per_packet.groupby(["class", "type"]).wirelen.agg(["count", "sum"]).compute(scheduler=client)
    got: Dict[Tuple[int, int], Tuple[int, int, int]] = {
        (int(c), int(t)): (int(count[(c, t)]), int(row["count"]), int(row["sum"]))
        for (c, t), row in packets.iterrows()
    }
    expected = _expected(captures)
    want = {(o["class"], o["type"]): (o["count"], o["packets"], o["bytes"]) for o in expected["options"]}
    assert got == want and len(got) > 8
    critical = int(options.critical.sum().compute(scheduler=client))
    assert critical == expected["critical"]["critical_options"]
