"""Output files: atomic, never over the input, errors that name OUT."""

import os

import pytest

from scapy_geneve.cli._common import atomic_output
from scapy_geneve.errors import CaptureError


def test_output_appears_only_on_success(tmp_path):
    out = tmp_path / "out.pcap"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(str(out)) as handle:
            handle.write(b"new, half written")
            raise RuntimeError("interrupted")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pcap"]  # no temporary left
    with atomic_output(str(out)) as handle:
        handle.write(b"new")
    assert out.read_bytes() == b"new"


def test_output_gets_the_mode_open_would_give(tmp_path):
    out = tmp_path / "out.pcap"
    with atomic_output(str(out)) as handle:
        handle.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_refuses_to_overwrite_the_input(tmp_path):
    src = tmp_path / "in.pcap"
    src.write_bytes(b"capture")
    with pytest.raises(CaptureError, match="refusing to overwrite the input"):
        with atomic_output(str(tmp_path / "." / "in.pcap"), str(src)):
            pass
    assert src.read_bytes() == b"capture"


@pytest.mark.parametrize("make_out, why", [
    (lambda d: d, "is a directory"),
    (lambda d: d / "missing" / "out.pcap", "does not exist"),
])
def test_bad_output_paths_are_named(tmp_path, make_out, why):
    out = make_out(tmp_path)
    with pytest.raises(CaptureError, match=why) as err:
        with atomic_output(str(out)):
            pass
    assert str(out) in str(err.value) and ".part" not in str(err.value)
