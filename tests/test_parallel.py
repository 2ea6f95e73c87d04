"""Many files, many processes: merging per-file stats in any grouping and order
equals one pass over all the packets (hypothesis), and globs expand as a shell would."""

import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scapy_geneve.capture.parallel import expand_inputs, inherited, map_files, merge_stats, pool_context
from scapy_geneve.capture.parallel import stats_files
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, PcapWriter
from scapy_geneve.capture.scan import ScanStats, compute_stats
from scapy_geneve.errors import CaptureError
from scapy_geneve.registry import DEFAULT_PORTS
from tests.test_dask import _frame

#: what depends on the files, not on the packets
PER_FILE = ("file", "format", "error")


def counts(stats: ScanStats) -> Dict[str, Any]:
    data = stats.to_dict()
    for key in PER_FILE:
        data.pop(key)
    return data


def write(path: Path, frames: List[bytes], first: int) -> str:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, LINKTYPE_ETHERNET, nanosecond=True)
        for i, frame in enumerate(frames):
            writer.write(frame, 1_700_000_000_000_000_000 + (first + i) * 1000)
    return str(path)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 1 << 16),
    packets=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_merged_files_equal_one_pass(
    tmp_path_factory: pytest.TempPathFactory, seed: int, packets: int, cuts: List[int], order: random.Random
) -> None:
    """Split one capture into files anywhere; merge their stats in any order and
    grouping: the counts of the whole capture."""
    rng = random.Random(seed)
    frames = [_frame(rng) for _ in range(packets)]
    folder = tmp_path_factory.mktemp("split")
    whole = compute_stats(write(folder / "whole.pcap", frames, 0), ports=DEFAULT_PORTS)
    bounds = sorted({0, packets, *[min(c, packets) for c in cuts]})
    parts = [
        compute_stats(write(folder / ("part%d.pcap" % k), frames[lo:hi], lo), ports=DEFAULT_PORTS)
        for k, (lo, hi) in enumerate(zip(bounds, bounds[1:]))
    ]
    order.shuffle(parts)
    assert counts(merge_stats(parts)) == counts(whole)
    if len(parts) >= 3:  # grouped differently: (a + b) + c == a + (b + c)
        left = merge_stats([merge_stats(parts[:2]), *parts[2:]])
        right = merge_stats([parts[0], merge_stats(parts[1:])])
        assert counts(left) == counts(right) == counts(whole)


def test_processes_equal_one(tmp_path: Path) -> None:
    rng = random.Random(3)
    paths = [write(tmp_path / ("f%d.pcap" % k), [_frame(rng) for _ in range(40)], k * 40) for k in range(5)]
    one, files_one = stats_files(paths, jobs=1, ports=DEFAULT_PORTS)
    two, files_two = stats_files(paths, jobs=2, ports=DEFAULT_PORTS)
    assert one.to_dict() == two.to_dict()
    assert [f.stats.packets for f in files_one] == [f.stats.packets for f in files_two] == [40] * 5


def test_globs(tmp_path: Path) -> None:
    for name in ("b.pcap", "a.pcap", "c.pcapng", "d.txt"):
        (tmp_path / name).write_bytes(b"")
    assert expand_inputs([str(tmp_path / "*.pcap*"), "-x"]) == [
        str(tmp_path / n) for n in ("a.pcap", "b.pcap", "c.pcapng")
    ] + ["-x"]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.cap")])
    with pytest.raises(CaptureError, match="only input"):
        expand_inputs(["-", str(tmp_path / "a.pcap")])


def _in_flight(item: int, delay: float) -> Tuple[int, int]:
    """(worker) ITEM, and how many items had been handed out when it started."""
    started = inherited()
    with started.get_lock():
        started.value += 1
        seen = started.value
    time.sleep(delay if item == 0 else 0)
    return item, seen


@pytest.mark.parametrize("ahead", [None, 0, 1, 3])
def test_map_files_in_order_within_ahead(ahead: Optional[int]) -> None:
    """Results come in the order of the paths, whichever finishes first; with AHEAD,
    no more than AHEAD items beyond the awaited one are handed out (a slow first item
    holds the others back); INHERIT reaches every worker."""
    started = pool_context().Value("i", 0)
    results = list(map_files(_in_flight, list(range(8)), 2, (0.3,), started, ahead))
    assert [item for item, _seen in results] == list(range(8))
    if ahead is not None:  # while item 0 sleeps, items 1..AHEAD are all that may start
        assert all(seen <= item + ahead + 1 for item, seen in results)
    assert started.value == 8
