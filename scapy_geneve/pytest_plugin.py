"""pytest plugin: a conformance suite for your own tunnel endpoint in a few lines.

Opt-in: installing scapy-geneve loads nothing into anyone's pytest run.  Turn it
on in your ``conftest.py`` with ``pytest_plugins = ["scapy_geneve.pytest_plugin"]``
(or on the command line with ``-p scapy_geneve.pytest_plugin``).

In your ``conftest.py``, say how to reach the endpoint::

    pytest_plugins = ["scapy_geneve.pytest_plugin"]

    import pytest
    from scapy_geneve.conformance.endpoints import InterfaceEndpoint
    from scapy_geneve.conformance.vectors import Target

    @pytest.fixture(scope="session")
    def tunnel_endpoint():
        target = Target(dst_mac="52:54:00:12:34:56", dst_ip="10.0.0.1", src_ip="10.0.0.2",
                        vni=5000, inner_dst_mac="02:00:00:00:50:01")
        with InterfaceEndpoint("tap-underlay", "tap-overlay", target,
                               protocols=["geneve"]) as endpoint:
            yield endpoint

and in a test file::

    def test_rfc8926(tunnel_endpoint, conformance_vector):
        assert_conformant(tunnel_endpoint, conformance_vector)

(``assert_conformant`` comes from ``scapy_geneve.pytest_plugin``.)  Every
vector of the catalogue becomes one test, named after it.  A MUST or control
vector that is not met fails; a SHOULD that is not met warns
(:class:`ConformanceDeviation`); MAY vectors pass and record what happened;
vectors the endpoint cannot take are skipped.  Narrow the set with
``@pytest.mark.conformance(protocols=["geneve"], levels=["MUST"])`` on the
test, or ``--conformance-protocol`` / ``--conformance-level`` on the command line.
"""

import warnings
from typing import Any, List, Optional

import pytest

from scapy_geneve.conformance.endpoints import EndpointError
from scapy_geneve.conformance.harness import DEVIATION, ERROR, FAIL, NA, Result, run_vectors
from scapy_geneve.conformance.vectors import PROTOCOLS as CONFORMANCE_PROTOCOLS
from scapy_geneve.conformance.vectors import Vector, vectors

__all__ = ["assert_conformant", "ConformanceDeviation", "check_vector"]


class ConformanceDeviation(UserWarning):
    """A SHOULD-level vector the endpoint does not meet."""


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("scapy-geneve", "tunnel endpoint conformance (scapy-geneve)")
    group.addoption(
        "--conformance-protocol",
        action="append",
        default=None,
        choices=list(CONFORMANCE_PROTOCOLS),
        help="only vectors of this protocol (repeatable)",
    )
    group.addoption(
        "--conformance-level",
        action="append",
        default=None,
        choices=["MUST", "SHOULD", "MAY", "CONTROL"],
        help="only vectors of this level (repeatable)",
    )


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "conformance(protocols=None, levels=None, names=None): "
        "which conformance vectors parametrize conformance_vector",
    )


def pytest_generate_tests(metafunc: Any) -> None:
    if "conformance_vector" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("conformance")
    kw = dict(marker.kwargs) if marker else {}
    protocols = kw.get("protocols") or metafunc.config.getoption("--conformance-protocol")
    levels = kw.get("levels") or metafunc.config.getoption("--conformance-level")
    selected: List[Vector] = vectors(protocols, levels, kw.get("names"))
    metafunc.parametrize("conformance_vector", selected, ids=[v.name for v in selected])


@pytest.fixture(scope="session")
def tunnel_endpoint() -> Any:
    """The endpoint under test: override this fixture in your conftest.py."""
    pytest.skip(
        "no tunnel endpoint: define a session-scoped `tunnel_endpoint` fixture that "
        "yields a started scapy_geneve.conformance.endpoints.Endpoint"
    )


def check_vector(endpoint: Any, vector: Vector, timeout: Optional[float] = None) -> Result:
    """Run one vector through ENDPOINT and return its :class:`Result`."""
    return run_vectors(endpoint, [vector], timeout=timeout)[0]


def assert_conformant(endpoint: Any, vector: Vector, timeout: Optional[float] = None) -> Result:
    """Run VECTOR; fail on FAIL/ERROR, warn on DEVIATION, skip on N/A.

    An endpoint that cannot be used at all (a wrong interface name) is reported
    once, by the first vector, as an error of the run; the others skip with a
    pointer to it instead of repeating the same failure.
    """
    reported = bool(getattr(endpoint, "unusable", ""))
    try:
        result = check_vector(endpoint, vector, timeout)
    except EndpointError as exc:
        if reported:
            pytest.skip("%s" % exc)
        pytest.fail("the endpoint under test cannot be used: %s" % exc, pytrace=False)
    message = "%s (%s, %s): expected %s, observed %s -- %s" % (
        vector.name,
        vector.level,
        vector.section,
        vector.expect.value,
        result.observed,
        vector.requirement,
    )
    if result.verdict in (FAIL, ERROR):
        pytest.fail("%s%s" % (message, "; %s" % result.detail if result.detail else ""), pytrace=False)
    if result.verdict == NA:
        pytest.skip(result.detail)
    if result.verdict == DEVIATION:
        warnings.warn(ConformanceDeviation(message), stacklevel=2)
    return result
