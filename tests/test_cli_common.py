"""Output files: atomic, never over the input, errors that name OUT; OUT
written as what it is (FIFO, device, symlink), mode and owner kept."""

import os
import signal
import stat
import threading

import pytest

from scapy_geneve.cli._common import Interrupted, atomic_output, writes_directly
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


@pytest.mark.parametrize(
    "make_out, why",
    [
        (lambda d: d, "is a directory"),
        (lambda d: d / "missing" / "out.pcap", "does not exist"),
    ],
)
def test_bad_output_paths_are_named(tmp_path, make_out, why):
    out = make_out(tmp_path)
    with pytest.raises(CaptureError, match=why) as err:
        with atomic_output(str(out)):
            pass
    assert str(out) in str(err.value) and ".part" not in str(err.value)


# -- OUT is written as what it is (issue 12) -----------------------------------------------
def test_a_fifo_is_written_not_replaced(tmp_path):
    """OUT a FIFO: its reader gets the bytes and the FIFO stays a FIFO (it used
    to be replaced by a regular file, its reader blocked forever)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with atomic_output(str(fifo)) as handle:
        handle.write(b"capture bytes")
    reader.join(30)
    assert got == [b"capture bytes"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_a_device_node_is_written_not_replaced(tmp_path):
    """OUT a character device (a test-made twin of /dev/null, 1:3): written
    through, still a device afterwards (as root, `filter in.pcap /dev/null`
    turned /dev/null into a regular file)."""
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with atomic_output(str(null)) as handle:
        handle.write(b"x" * 1000)
    st = os.lstat(null)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]


def test_a_symlink_writes_its_target_atomically(tmp_path):
    """OUT a symlink: the target gets the new bytes (atomically, its mode
    kept), the link stays a link (it used to be replaced, the target never written)."""
    target = tmp_path / "real.pcap"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.pcap"
    link.symlink_to("real.pcap")
    with atomic_output(str(link)) as handle:
        handle.write(b"new")
    assert link.is_symlink() and os.readlink(link) == "real.pcap"
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.pcap", "real.pcap"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.pcap"
    link.symlink_to("made.pcap")
    with atomic_output(str(link)) as handle:
        handle.write(b"new")
    assert link.is_symlink() and (tmp_path / "made.pcap").read_bytes() == b"new"


def test_replacing_keeps_mode_and_owner(tmp_path):
    out = tmp_path / "out.pcap"
    out.write_bytes(b"old")
    os.chmod(out, 0o604)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.chown(out, *owner)
    with atomic_output(str(out)) as handle:
        handle.write(b"new")
    st = out.stat()
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(st.st_mode) == 0o604 and (st.st_uid, st.st_gid) == owner


def test_a_long_but_valid_name_fits_with_its_temporary(tmp_path):
    """A 246-character OUT (valid: NAME_MAX is 255) was refused because the
    temporary's name added '.' + 8 random characters + '.part'."""
    out = tmp_path / ("x" * 246)
    with atomic_output(str(out)) as handle:
        handle.write(b"ok")
    assert out.read_bytes() == b"ok"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_stdin_file_is_the_input_by_device_and_inode(tmp_path):
    """`filter - cap.pcap < cap.pcap`: standard input IS cap.pcap, refused."""
    cap = tmp_path / "cap.pcap"
    cap.write_bytes(b"capture")
    saved = os.dup(0)
    fd = os.open(cap, os.O_RDONLY)
    os.dup2(fd, 0)
    try:
        with pytest.raises(CaptureError, match="refusing to overwrite the input file"):
            with atomic_output(str(cap), "-"):
                pass
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(fd)
    assert cap.read_bytes() == b"capture"


def test_an_interrupt_keeps_what_was_written_an_error_does_not(tmp_path):
    """SIGINT/SIGTERM/SIGHUP (Interrupted) keep the packets written so far, as
    tcpdump does; any other error leaves OUT as it was."""
    out = tmp_path / "out.pcap"
    with pytest.raises(Interrupted):
        with atomic_output(str(out)) as handle:
            handle.write(b"done so far")
            raise Interrupted(signal.SIGTERM)
    assert out.read_bytes() == b"done so far"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pcap"]


def test_writes_directly_tells_streams_from_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "file").write_bytes(b"")
    assert writes_directly("-") and writes_directly(str(fifo))
    assert not writes_directly(str(tmp_path / "file"))
    assert not writes_directly(str(tmp_path / "new"))
