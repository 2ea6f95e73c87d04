"""Every command says the same thing about the same packet.

On every capture in pcaps/ and in tcpdump's corpus: ``show --json`` (kind and
identifier per packet), ``stats --json`` (packets per kind, per (kind,
identifier)), ``filter --kind K`` (how many packets each kind selects) and
``lint`` (the first tunnel it judges) agree.  The commands run in-process
through ``scapy_geneve.cli.main``, exactly as the console script calls it.

Two listed differences, where lint reads a tunnel to say what is wrong with it:
keyed GRE carrying Ethernet with C or S set is plain GRE to the decoder and a
(guessed, flagged) NVGRE to lint, which says which RFC 7637 bit it breaks
(tests/test_lint_batch.py); a UDP datagram from port 6081 to a port no tunnel
uses is no tunnel to the decoder (Geneve is identified by its destination port)
and Geneve sent with its ports reversed to lint (GNV010, RFC 8926 §3.3).  Beyond
the captures, Hypothesis checks the decoder and lint on generated packets.
"""

import json
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import given, settings

from scapy_geneve.capture import pcapio
from scapy_geneve.cli import main
from scapy_geneve.capture.decode import decode
from scapy_geneve.conformance.lint import lint_report
from tests.lint_packets import tunnel_packets

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
Key = Tuple[Optional[str], Optional[int]]


def _run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def _show(capsys: pytest.CaptureFixture, path: Path) -> List[Key]:
    code, out = _run(capsys, "show", "--json", "-n", str(path))
    assert code in (0, 2), out[-2000:]
    return [(rec["kind"], rec["id"]) for rec in map(json.loads, out.splitlines())]


def _stats(capsys: pytest.CaptureFixture, path: Path) -> Dict[str, object]:
    code, out = _run(capsys, "stats", "--json", "-q", str(path))
    assert code in (0, 2), out[-2000:]
    return json.loads(out)


def _filtered(capsys: pytest.CaptureFixture, path: Path, kind: str, tmp: Path) -> int:
    out = tmp / ("%s.pcap" % kind)
    code, _ = _run(capsys, "filter", "-q", "--kind", kind, str(path), str(out))
    assert code in (0, 2)
    return sum(1 for _ in pcapio.iter_records(str(out))) if out.exists() else 0


def _captures() -> List[Path]:
    from tests.conftest import CORPUS

    corpus = sorted(CORPUS.glob("*.pcap")) if CORPUS.is_dir() else []
    return sorted(PCAPS.glob("*.pcap")) + corpus


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_show_stats_filter_and_lint_agree(path: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    shown = _show(capsys, path)
    records = list(pcapio.iter_records(str(path)))
    assert len(shown) == len(records), "show printed %d lines for %d packets" % (len(shown), len(records))

    stats = _stats(capsys, path)
    kinds = Counter(kind for kind, _ in shown if kind is not None)
    counted = {kind: entry["packets"] for kind, entry in stats["encapsulations"].items()}  # type: ignore[index]
    counted.pop("none", None)
    assert counted == dict(kinds), (counted, kinds)

    with_id = Counter((kind, ident) for kind, ident in shown if kind is not None and ident is not None)
    per_id = {(v["kind"], v["vni"]): v["packets"] for v in stats["vnis"]}  # type: ignore[union-attr]
    assert per_id == dict(with_id)

    for kind, count in kinds.items():
        assert _filtered(capsys, path, kind, tmp_path) == count, kind

    for rec, (kind, _) in zip(records, shown):
        report = lint_report(rec.data, rec.linktype)
        first = report.kinds[0] if report.kinds else None
        if first != kind:  # only the listed differences (module docstring)
            rules = {f.rule for f in report.findings}
            assert _listed_difference(first, kind, rules), (path.name, rec.number, first, kind)


# -- every packet, not only the captures ---------------------------------------------------------
def _listed_difference(first: Optional[str], kind: Optional[str], rules: Set[str]) -> bool:
    """The module docstring's differences: lint reads NVGRE in keyed GRE that breaks
    RFC 7637, and Geneve sent from 6081 to a port no tunnel uses (GNV010)."""
    if first == "nvgre" and kind is None:
        return bool(rules & {"NVG002", "NVG003", "NVG005", "NVG006"})
    return first == "geneve" and kind is None and "GNV010" in rules


@settings(max_examples=400, deadline=None)
@given(data=tunnel_packets())
def test_the_decoder_and_lint_read_the_same_tunnel(data: bytes) -> None:
    """What show, stats and filter read (the wire decoder) is what lint judges."""
    kind = decode(data).kind
    report = lint_report(data)
    first = report.kinds[0] if report.kinds else None
    if first != kind:
        assert _listed_difference(first, kind, {f.rule for f in report.findings}), (
            data.hex(),
            first,
            kind,
        )
