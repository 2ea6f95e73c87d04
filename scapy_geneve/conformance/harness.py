"""Conformance harness: send every vector into an endpoint, see what comes out.

``run_vectors(endpoint, vectors)`` injects each vector's outer frame on the
endpoint's underlay interface and watches the overlay interface for the
vector's inner frame (it carries a unique tag).  Seen within the timeout:
*delivered*; not seen: *dropped*.  Each observation is judged against what
the RFC requires (:class:`scapy_geneve.conformance.vectors.Expect`) into a verdict:

=========  ===============================================================
PASS       the endpoint did what the spec requires
FAIL       a MUST (or a CONTROL sanity vector) was not met
DEVIATION  a SHOULD was not met
INFO       the spec leaves the choice open (MAY); the observation is kept
N/A        the endpoint does not speak the vector's protocol/IP family
ERROR      the vector could not be sent
=========  ===============================================================

The returned :class:`VerdictTable` is a list of :class:`Result` with
``ok`` (no FAIL/ERROR), ``counts()``, ``to_text()``, ``to_markdown()`` and
``to_json()``.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional

from scapy_geneve.conformance.endpoints import Endpoint, EndpointError, Observer
from scapy_geneve.conformance.vectors import Expect, Target, Vector, vectors as all_vectors

__all__ = [
    "Result",
    "VerdictTable",
    "run_vectors",
    "judge",
    "PASS",
    "FAIL",
    "DEVIATION",
    "INFO",
    "NA",
    "ERROR",
    "DELIVERED",
    "DROPPED",
]

PASS, FAIL, DEVIATION, INFO, NA, ERROR = "PASS", "FAIL", "DEVIATION", "INFO", "N/A", "ERROR"
DELIVERED, DROPPED = "delivered", "dropped"


def judge(vector: Vector, delivered: bool) -> str:
    """The verdict for VECTOR given whether its inner frame came out."""
    want = vector.expect.delivers
    if want is None:
        return INFO
    if want == delivered:
        return PASS
    if vector.level in ("MUST", "CONTROL"):
        return FAIL
    if vector.level == "SHOULD":
        return DEVIATION
    return INFO


@dataclass
class Result:
    """One row of the verdict table."""

    vector: Vector
    observed: str  # delivered, dropped, n/a, error
    verdict: str
    detail: str = ""
    intact: Optional[bool] = None  # inner frame came out byte-identical
    counters: Dict[str, int] = field(default_factory=dict)  # per-vector deltas

    @property
    def name(self) -> str:
        return self.vector.name

    def as_dict(self) -> Dict[str, Any]:
        v = self.vector
        return {
            "vector": v.name,
            "protocol": v.protocol,
            "level": v.level,
            "section": v.section,
            "expected": v.expect.value,
            "observed": self.observed,
            "verdict": self.verdict,
            "intact": self.intact,
            "detail": self.detail,
            "counters": self.counters,
            "requirement": v.requirement,
        }


class VerdictTable(List[Result]):
    """The harness's answer: one :class:`Result` per vector, in order."""

    endpoint: str = ""
    endpoint_version: str = ""

    @property
    def ok(self) -> bool:
        """True when no MUST or CONTROL vector failed and nothing errored."""
        return not any(r.verdict in (FAIL, ERROR) for r in self)

    def counts(self) -> Dict[str, int]:
        out = {k: 0 for k in (PASS, FAIL, DEVIATION, INFO, NA, ERROR)}
        for r in self:
            out[r.verdict] += 1
        return out

    def by_name(self) -> Dict[str, Result]:
        return {r.name: r for r in self}

    def failures(self) -> List[Result]:
        return [r for r in self if r.verdict in (FAIL, ERROR)]

    def to_text(self) -> str:
        w = max([len(r.name) for r in self] + [6])
        lines = ["%-*s  %-7s  %-23s  %-9s  %s" % (w, "vector", "level", "expected", "observed", "verdict")]
        for r in self:
            lines.append(
                "%-*s  %-7s  %-23s  %-9s  %s%s"
                % (
                    w,
                    r.name,
                    r.vector.level,
                    r.vector.expect.value,
                    r.observed,
                    r.verdict,
                    "  (%s)" % r.detail if r.detail else "",
                )
            )
        c = self.counts()
        lines.append(
            "%s: %s" % (self.endpoint or "endpoint", ", ".join("%d %s" % (n, k) for k, n in c.items() if n))
        )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        rows = [
            "| vector | requirement | level | section | expected | observed | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self:
            v = r.vector
            rows.append(
                "| `%s` | %s | %s | %s | %s | %s | **%s** |"
                % (v.name, v.requirement, v.level, v.section, v.expect.value, r.observed, r.verdict)
            )
        return "\n".join(rows)

    def to_json(self) -> str:
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "version": self.endpoint_version,
                "counts": self.counts(),
                "ok": self.ok,
                "results": [r.as_dict() for r in self],
            },
            indent=2,
        )


def _inner_of(frame: bytes, target: Target) -> bytes:
    """The inner Ethernet frame inside FRAME: from the inner MAC pair to the end."""
    macs = bytes.fromhex(target.inner_dst_mac.replace(":", "")) + bytes.fromhex(
        target.inner_src_mac.replace(":", "")
    )
    i = frame.find(macs, 14)
    return frame[i:] if i >= 0 else b""


def _first_difference(got: bytes, want: bytes) -> str:
    """Where GOT first differs from WANT, for the verdict's detail."""
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return "byte %d of the inner frame is 0x%02x, 0x%02x required" % (i, a, b)
    return "%d bytes came out, %d required" % (len(got), len(want))


def _delta(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def run_vectors(
    endpoint: Endpoint,
    vectors: Optional[Iterable[Vector]] = None,
    timeout: Optional[float] = None,
    counters: bool = True,
) -> VerdictTable:
    """Send every vector into ENDPOINT (started) and judge what comes out.

    ``vectors``: default, the catalogue for the endpoint's protocols (a
    vector the endpoint cannot take is N/A).  ``timeout``: how long to wait
    for an inner frame after ``endpoint.settle()`` before calling it dropped
    (default ``endpoint.timeout``; must be positive).  ``counters``: diff
    ``endpoint.counters()`` around each vector (evidence; costs a few ms per vector).

    An endpoint that cannot be used at all (an interface that does not exist,
    a namespace that is gone) is an error of the run, not a verdict of each
    vector: :class:`EndpointError` is raised once, before any verdict, and the
    endpoint remembers it (``endpoint.unusable``) so later calls (one per
    vector, as the pytest plugin makes them) raise at once without retrying.
    """
    from scapy_geneve.conformance.endpoints import _describe

    wait = endpoint.timeout if timeout is None else timeout
    if not wait > 0:
        raise ValueError("timeout must be a positive number of seconds, not %r" % (wait,))
    table = VerdictTable()
    table.endpoint, table.endpoint_version = _describe(endpoint)
    todo = list(all_vectors(endpoint.protocols) if vectors is None else vectors)
    takes = [v for v in todo if v.protocol in endpoint.protocols and v.family in endpoint.families]
    observer = _observer(endpoint) if takes else None
    try:
        for vector in todo:
            if (
                observer is None
                or vector.protocol not in endpoint.protocols
                or vector.family not in endpoint.families
            ):
                table.append(
                    Result(
                        vector,
                        "n/a",
                        NA,
                        "endpoint does not take %s over IPv%d" % (vector.protocol, vector.family),
                    )
                )
                continue
            table.append(_run_one(endpoint, observer, vector, wait, counters))
    finally:
        if observer is not None:
            observer.close()
    return table


def _observer(endpoint: Endpoint) -> Observer:
    """The endpoint's observer, or EndpointError once for an unusable endpoint."""
    if endpoint.unusable:
        raise EndpointError("%s (reported by the first vector)" % endpoint.unusable)
    try:
        return endpoint.observer()
    except EndpointError as exc:
        endpoint.unusable = "endpoint %s cannot be used: %s" % (endpoint.name, exc)
        raise EndpointError(endpoint.unusable) from None


def _send(endpoint: Endpoint, frame: bytes) -> Optional[str]:
    """Send FRAME; the error of this one frame (an OSError), if any.  An
    EndpointError (the endpoint cannot send at all) ends the run."""
    try:
        endpoint.send(frame)
    except EndpointError as exc:
        endpoint.unusable = "endpoint %s cannot be used: %s" % (endpoint.name, exc)
        raise EndpointError(endpoint.unusable) from None
    except OSError as exc:
        return "send: %s" % exc
    return None


def _run_one(endpoint: Endpoint, observer: Observer, vector: Vector, wait: float, counters: bool) -> Result:
    """Inject one vector and judge what came out."""
    target = endpoint.target(vector.protocol)
    try:
        frame = vector.frame(target)
        required = vector.expected_inner(target)
        inner_ref = required if required is not None else _inner_of(frame, target)
    except Exception as exc:  # a user vector that cannot build
        return Result(vector, "error", ERROR, "build: %s" % exc)
    endpoint.prepare()
    before = endpoint.counters() if counters else {}
    observer.drain()
    problem = _send(endpoint, frame)
    if problem is not None:
        return Result(vector, "error", ERROR, problem)
    endpoint.settle()
    got = observer.wait_for(vector.tag, wait)
    after = endpoint.counters() if counters else {}
    delivered = got is not None
    intact = None if got is None else (bool(inner_ref) and got[: len(inner_ref)] == inner_ref)
    result = Result(
        vector,
        DELIVERED if delivered else DROPPED,
        judge(vector, delivered),
        counters=_delta(before, after),
        intact=intact,
    )
    if delivered and not intact:
        if required is not None:
            # the requirement is about what comes out: a different frame does not meet it
            result.verdict = judge(vector, not delivered)
            result.detail = "inner frame is not the one required: %s" % _first_difference(
                got or b"", required
            )
        else:
            result.detail = "inner frame modified"
    return result


def expected_table(vs: Optional[Iterable[Vector]] = None) -> List[Dict[str, str]]:
    """The catalogue as rows (name, level, section, expected): for docs."""
    return [
        {
            "vector": v.name,
            "protocol": v.protocol,
            "level": v.level,
            "section": v.section,
            "expected": v.expect.value if isinstance(v.expect, Expect) else str(v.expect),
        }
        for v in (all_vectors() if vs is None else vs)
    ]
