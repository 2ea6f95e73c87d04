"""pcapio: pcap and pcapng read back exactly as libpcap/Scapy/tshark read them,
in every byte order and timestamp resolution, across chunk boundaries; bad
files give a CaptureError naming the file, byte offset and packet number after
every good packet before the damage has been handed out."""

import shutil
import struct
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest
from scapy.utils import RawPcapNgReader, RawPcapReader

from scapy_geneve.errors import CaptureError
from scapy_geneve.capture.pcapio import (
    BT_EPB,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    PcapngWriter,
    PcapWriter,
    Record,
    iter_records,
    open_capture,
)

FRAMES = [bytes([i]) * (60 + 7 * i) for i in range(40)]  # lengths not multiples of 4
T0 = 1_700_000_000_123_456_789


def write_pcap(
    path: Path,
    frames: List[bytes] = FRAMES,
    endian: str = "<",
    nanosecond: bool = False,
    linktype: int = LINKTYPE_ETHERNET,
) -> Path:
    with open(path, "wb") as handle:
        writer = PcapWriter(handle, linktype, nanosecond=nanosecond, endian=endian)
        for i, frame in enumerate(frames):
            writer.write(frame, T0 + i * 1_000_001, wirelen=len(frame) + (i % 3))
    return path


def read_all(path: Path, chunk_size: int = 1 << 20) -> list:
    with open_capture(path, chunk_size=chunk_size) as reader:
        return list(reader.records())


class TestPcap:
    @pytest.mark.parametrize("endian", ["<", ">"])
    @pytest.mark.parametrize("nanosecond", [False, True])
    def test_round_trip(self, tmp_path: Path, endian: str, nanosecond: bool) -> None:
        path = write_pcap(tmp_path / "x.pcap", endian=endian, nanosecond=nanosecond)
        records = read_all(path)
        assert [r.data for r in records] == FRAMES
        assert [r.number for r in records] == list(range(1, 41))
        assert [r.wirelen - r.caplen for r in records] == [i % 3 for i in range(40)]
        step = 1 if nanosecond else 1000
        assert [r.ts_ns for r in records] == [(T0 + i * 1_000_001) // step * step for i in range(40)]
        # offsets point at the record headers
        raw = path.read_bytes()
        for rec in records:
            assert raw[rec.offset + 16 : rec.offset + 16 + rec.caplen] == rec.data

    @pytest.mark.parametrize("chunk", [17, 64, 100, 4096])
    def test_chunk_boundaries(self, tmp_path: Path, chunk: int) -> None:
        """Records that straddle reads, and reads smaller than one record."""
        path = write_pcap(tmp_path / "x.pcap")
        assert [r.data for r in read_all(path, chunk)] == FRAMES

    def test_kept_batches_stay_valid(self, tmp_path: Path) -> None:
        """The reader refills a buffer only when nobody holds it any more."""
        path = write_pcap(tmp_path / "x.pcap")
        with open_capture(path, chunk_size=300) as reader:
            batches = list(reader.batches())
        assert len(batches) > 5
        assert [r.data for b in batches for r in b.records()] == FRAMES

    @pytest.mark.parametrize("fmt", ["pcap", "pcapng", "pcapng.gz"])
    def test_views_of_dropped_batches_stay_valid(self, tmp_path: Path, fmt: str) -> None:
        """A numpy view, a memoryview or a record of a batch, kept after the batch
        itself is dropped, keeps its bytes: the reader refills one of its spare
        buffers only when nothing references it."""
        import gzip

        import numpy

        path = write_pcap(tmp_path / "x.pcap") if fmt == "pcap" else _pcapng(tmp_path / "x.pcapng")[0]
        if fmt.endswith(".gz"):
            path = tmp_path / "x.pcapng.gz"
            path.write_bytes(gzip.compress((tmp_path / "x.pcapng").read_bytes()))
        kept = []
        with open_capture(path, chunk_size=200) as reader:
            for batch in reader.batches():  # each batch is dropped at the next one
                kept.append((numpy.frombuffer(batch.buf, numpy.uint8)[3:], bytes(batch.buf)[3:]))
                kept.append((memoryview(batch.buf)[1:], bytes(batch.buf)[1:]))
                kept.extend((rec.data, bytes(rec.data)) for rec in batch.records())
        assert len(kept) > 40
        assert all(bytes(view) == copy for view, copy in kept)

    def test_agrees_with_scapy_reader(self, tmp_path: Path) -> None:
        path = write_pcap(tmp_path / "x.pcap", endian=">", nanosecond=True)
        theirs = [(data, meta.wirelen) for data, meta in RawPcapReader(str(path))]
        assert [(r.data, r.wirelen) for r in read_all(path)] == theirs

    def test_corpus_agrees_with_scapy_reader(self, corpus: Path) -> None:
        # Scapy's RawPcapReader cuts every record at 65535 bytes (its MTU); tcpdump's
        # BIG TCP captures hold longer ones, read whole here (caplen = len(data)).
        for path in sorted(corpus.glob("*.pcap")):
            theirs = [data for data, _meta in RawPcapReader(str(path))]
            ours = list(iter_records(path))
            assert [r.data[:65535] for r in ours] == theirs, path.name
            assert all(len(r.data) == r.caplen for r in ours)

    @pytest.mark.oracle
    def test_tcpdump_reads_what_we_write(self, tmp_path: Path, tcpdump: str) -> None:
        path = write_pcap(tmp_path / "x.pcap", endian=">", nanosecond=True)
        out = subprocess.run(
            [tcpdump, "-nn", "-r", str(path), "--time-stamp-precision=nano", "-tt"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        stamps = [line.split()[0] for line in out.splitlines() if not line[:1].isspace()]
        assert stamps == ["%d.%09d" % divmod(T0 + i * 1_000_001, 10**9) for i in range(40)]


def _pcapng(
    path: Path, endian: str = "<", unknown_block: bool = True
) -> Tuple[Path, List[Tuple[int, bytes, int]]]:
    """Two interfaces (Ethernet µs, raw IP 2^-20 s + tsoffset), EPB, SPB, other blocks."""
    expect = []
    with open(path, "wb") as handle:
        writer = PcapngWriter(handle, endian)
        writer.write_block(0x00000004, bytes(4))  # Name Resolution Block: end record
        eth = writer.add_interface(LINKTYPE_ETHERNET)
        for i, frame in enumerate(FRAMES[:10]):
            writer.write(frame, T0 + i, eth)
            expect.append((eth, frame, (T0 + i) // 1000 * 1000))
        raw = writer.add_interface(LINKTYPE_RAW, tsresol=0x80 | 20, tsoffset=5)
        if unknown_block:  # skipped by us; tshark 4.0 shows it as a record
            writer.write_block(0x0BAD, b"custom")
        for i, frame in enumerate(FRAMES[10:20]):
            writer.write(frame, T0 + i, raw)
            units = ((T0 + i - 5 * 10**9) << 20) // 10**9
            expect.append((raw, frame, (units * 10**9 >> 20) + 5 * 10**9))
        writer.write_simple(FRAMES[20])
        expect.append((0, FRAMES[20], None))
    return path, expect


class TestPcapng:
    @pytest.mark.parametrize("endian", ["<", ">"])
    @pytest.mark.parametrize("chunk", [50, 1 << 20])
    def test_interfaces_resolutions_blocks(self, tmp_path: Path, endian: str, chunk: int) -> None:
        path, expect = _pcapng(tmp_path / "x.pcapng", endian)
        records = read_all(path, chunk)
        assert [(r.interface, r.data, r.ts_ns) for r in records] == expect
        assert [r.linktype for r in records] == [1] * 10 + [101] * 10 + [1]

    def test_two_sections_two_byte_orders(self, tmp_path: Path) -> None:
        first, e1 = _pcapng(tmp_path / "a.pcapng", "<")
        second, e2 = _pcapng(tmp_path / "b.pcapng", ">")
        both = tmp_path / "both.pcapng"
        both.write_bytes(first.read_bytes() + second.read_bytes())
        records = read_all(both, 300)
        assert [(r.interface, r.data, r.ts_ns) for r in records] == e1 + e2
        assert [r.number for r in records] == list(range(1, len(e1) + len(e2) + 1))

    def test_agrees_with_scapy_reader(self, tmp_path: Path) -> None:
        path, _expect = _pcapng(tmp_path / "x.pcapng")
        theirs = [data for data, _meta in RawPcapNgReader(str(path))]
        assert [r.data for r in read_all(path)] == theirs

    @pytest.mark.oracle
    def test_tshark_reads_what_we_write(self, tmp_path: Path, tshark: str) -> None:
        path, expect = _pcapng(tmp_path / "x.pcapng", ">", unknown_block=False)
        out = subprocess.run(
            [
                tshark,
                "-n",
                "-r",
                str(path),
                "-T",
                "fields",
                "-e",
                "frame.interface_id",
                "-e",
                "frame.len",
                "-e",
                "frame.time_epoch",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split("\t") for line in out.splitlines()]
        # A Simple Packet Block has no interface field (it is interface 0).
        assert [(int(i or 0), int(n)) for i, n, _t in rows] == [(i, len(f)) for i, f, _ in expect]
        # Ethernet interface, microseconds: tshark's epoch times are ours.
        assert [t for _i, _n, t in rows[:10]] == ["%d.%09d" % divmod(ts, 10**9) for _i, _f, ts in expect[:10]]

    def test_sll2_link_type_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "sll2.pcapng"
        with open(path, "wb") as handle:
            writer = PcapngWriter(handle)
            writer.add_interface(LINKTYPE_LINUX_SLL2, tsresol=9)
            writer.write(FRAMES[0], T0)
        (rec,) = read_all(path)
        assert (rec.linktype, rec.ts_ns) == (LINKTYPE_LINUX_SLL2, T0)


# -- bad files --------------------------------------------------------------------------------
def _expect_error(path: Path, match: str, offset: int, packet: int, good: int) -> CaptureError:
    """Reading PATH yields GOOD packets, then raises naming OFFSET and PACKET."""
    seen = []
    with pytest.raises(CaptureError, match=match) as info:
        for rec in iter_records(path):
            seen.append(rec)
    err = info.value
    assert (err.path, err.offset, err.packet) == (str(path), offset, packet)
    assert len(seen) == good
    assert str(path) in str(err) and "offset %d" % offset in str(err)
    return err


class TestBadFiles:
    def test_wrong_magic(self, tmp_path: Path) -> None:
        path = tmp_path / "x.pcap"
        path.write_bytes(b"GIF89a" + bytes(40))
        _expect_error(path, "not a pcap or pcapng file: magic 0x47494638", 0, None, 0)

    def test_empty_file(self, tmp_path: Path) -> None:
        path = tmp_path / "x.pcap"
        path.write_bytes(b"")
        _expect_error(path, "too short for a magic number", 0, None, 0)

    def test_truncated_file_header(self, tmp_path: Path) -> None:
        path = tmp_path / "x.pcap"
        path.write_bytes(write_pcap(tmp_path / "ok.pcap").read_bytes()[:20])
        _expect_error(path, "truncated pcap file header", 0, None, 0)

    def test_truncated_record(self, tmp_path: Path) -> None:
        good = write_pcap(tmp_path / "ok.pcap").read_bytes()
        offsets = [r.offset for r in iter_records(tmp_path / "ok.pcap")]
        path = tmp_path / "x.pcap"
        path.write_bytes(good[: offsets[5] + 16 + 3])  # packet 6: 3 data bytes left
        _expect_error(path, r"header says 95 captured bytes, only 3 left", offsets[5], 6, 5)
        path.write_bytes(good[: offsets[5] + 9])  # packet 6: half a header
        _expect_error(path, "truncated record header: 9 of 16 bytes", offsets[5], 6, 5)

    def test_absurd_record_length(self, tmp_path: Path) -> None:
        data = bytearray(write_pcap(tmp_path / "ok.pcap").read_bytes())
        offsets = [r.offset for r in iter_records(tmp_path / "ok.pcap")]
        struct.pack_into("<I", data, offsets[3] + 8, 0x7FFFFFF0)
        path = tmp_path / "x.pcap"
        path.write_bytes(bytes(data))
        _expect_error(path, "record length 2147483632 is absurd", offsets[3], 4, 3)

    def test_absurd_record_length_inside_a_chunk(self, tmp_path: Path) -> None:
        """A bad length small enough to land inside the buffer is still caught."""
        frames = FRAMES[:3] + [bytes(300000)] + FRAMES[3:6]
        path = write_pcap(tmp_path / "x.pcap", frames)
        offsets = [24 + sum(16 + len(f) for f in frames[:k]) for k in range(len(frames))]
        _expect_error(path, "record length 300000 is absurd", offsets[3], 4, 3)

    def test_unsupported_version(self, tmp_path: Path) -> None:
        data = bytearray(write_pcap(tmp_path / "ok.pcap").read_bytes())
        struct.pack_into("<H", data, 4, 3)
        path = tmp_path / "x.pcap"
        path.write_bytes(bytes(data))
        _expect_error(path, "unsupported pcap version 3.4", 4, None, 0)

    def test_pcapng_bad_block_length(self, tmp_path: Path) -> None:
        path, _ = _pcapng(tmp_path / "ok.pcapng")
        data = bytearray(path.read_bytes())
        offsets = [r.offset for r in iter_records(path)]
        struct.pack_into("<I", data, offsets[4] + 4, 13)  # not a multiple of 4
        bad = tmp_path / "x.pcapng"
        bad.write_bytes(bytes(data))
        _expect_error(bad, "invalid total length 13", offsets[4], 5, 4)

    def test_pcapng_trailing_length_mismatch(self, tmp_path: Path) -> None:
        path, _ = _pcapng(tmp_path / "ok.pcapng")
        data = bytearray(path.read_bytes())
        rec = list(iter_records(path))[2]
        blen = struct.unpack_from("<I", data, rec.offset + 4)[0]
        struct.pack_into("<I", data, rec.offset + blen - 4, blen + 4)
        bad = tmp_path / "x.pcapng"
        bad.write_bytes(bytes(data))
        _expect_error(
            bad, "trailing length %d does not match leading length %d" % (blen + 4, blen), rec.offset, 3, 2
        )

    def test_pcapng_packet_before_interface(self, tmp_path: Path) -> None:
        path = tmp_path / "x.pcapng"
        with open(path, "wb") as handle:
            writer = PcapngWriter(handle)
            writer.interfaces.append((6, 0, 0))  # pretend, so write() works
            writer.write(FRAMES[0], T0, 0)
        _expect_error(path, "refers to interface 0, but only 0 Interface Description", 28, 1, 0)

    def test_pcapng_truncated_block(self, tmp_path: Path) -> None:
        path, _ = _pcapng(tmp_path / "ok.pcapng")
        offsets = [r.offset for r in iter_records(path)]
        bad = tmp_path / "x.pcapng"
        bad.write_bytes(path.read_bytes()[: offsets[7] + 30])
        _expect_error(bad, "truncated block: total length", offsets[7], 8, 7)

    def test_pcapng_bad_byte_order_magic(self, tmp_path: Path) -> None:
        path, _ = _pcapng(tmp_path / "ok.pcapng")
        data = bytearray(path.read_bytes())
        data[8:12] = b"\x00\x11\x22\x33"
        bad = tmp_path / "x.pcapng"
        bad.write_bytes(bytes(data))
        _expect_error(bad, "bad byte-order magic", 0, 1, 0)

    def test_pcapng_epb_caplen_past_block(self, tmp_path: Path) -> None:
        path, _ = _pcapng(tmp_path / "ok.pcapng")
        data = bytearray(path.read_bytes())
        rec = list(iter_records(path))[1]
        assert struct.unpack_from("<I", data, rec.offset)[0] == BT_EPB
        struct.pack_into("<I", data, rec.offset + 20, 5000)
        bad = tmp_path / "x.pcapng"
        bad.write_bytes(bytes(data))
        _expect_error(bad, "captured length 5000 runs past the end", rec.offset, 2, 1)


class TestGzip:
    """capture.pcap.gz and .pcapng.gz stream through the same reader."""

    def test_pcap_and_pcapng(self, tmp_path: Path) -> None:
        import gzip

        plain = write_pcap(tmp_path / "x.pcap", nanosecond=True)
        ng, _ = _pcapng(tmp_path / "x.pcapng")
        for path in (plain, ng):
            packed = tmp_path / (path.name + ".gz")
            packed.write_bytes(gzip.compress(path.read_bytes()))
            with open_capture(packed, chunk_size=100) as reader:
                assert reader.compressed
                got = list(reader.records())
            assert got == read_all(path)

    def test_truncated_and_corrupt(self, tmp_path: Path) -> None:
        import gzip

        frames = [bytes([i % 251]) * 1400 for i in range(400)]  # ~570 KB uncompressed
        packed = gzip.compress(write_pcap(tmp_path / "x.pcap", frames).read_bytes())
        bad = tmp_path / "cut.pcap.gz"
        bad.write_bytes(packed[: len(packed) // 2])
        seen = []
        with pytest.raises(CaptureError, match="gzip stream") as info:
            for rec in iter_records(bad):
                seen.append(rec)
        assert info.value.path == str(bad) and 0 < len(seen) < 400
        assert info.value.packet == len(seen) + 1
        flipped = bytearray(packed)
        flipped[len(flipped) // 2] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CaptureError):
            list(iter_records(bad))


def _records_until_error(path: Path) -> Tuple[List[Record], CaptureError]:
    seen: List[Record] = []
    with pytest.raises(CaptureError) as info:
        for rec in iter_records(path):
            seen.append(rec)
    return seen, info.value


class TestGzipDamage:
    """A damaged .pcap.gz gives every packet before the damage, like ``gzip -dc``."""

    @pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
    def test_cut_stream_reads_what_gzip_d_reads(self, tmp_path: Path, fmt: str) -> None:
        import gzip
        import random

        gzip_bin = shutil.which("gzip")
        if gzip_bin is None:
            pytest.skip("gzip is not installed (the peer decompressor)")
        rng = random.Random(6)
        frames = [rng.randbytes(rng.randrange(60, 1500)) for _ in range(1500)]  # ~1.1 MB
        if fmt == "pcap":
            plain = write_pcap(tmp_path / "x.pcap", frames)
        else:
            plain = tmp_path / "x.pcapng"
            with open(plain, "wb") as handle:
                writer = PcapngWriter(handle)
                writer.add_interface(LINKTYPE_ETHERNET)
                for i, frame in enumerate(frames):
                    writer.write(frame, 10**18 + i)
        packed = gzip.compress(plain.read_bytes())
        cut = tmp_path / ("cut.%s.gz" % fmt)
        cut.write_bytes(packed[: len(packed) * 2 // 3])
        peer = subprocess.run([gzip_bin, "-dc", str(cut)], capture_output=True)
        assert peer.returncode != 0 and b"unexpected end of file" in peer.stderr
        partial = tmp_path / ("partial." + fmt)
        partial.write_bytes(peer.stdout)  # what gzip -d recovers: a truncated capture
        theirs, their_error = _records_until_error(partial)
        ours, error = _records_until_error(cut)
        assert ours == theirs and len(ours) > 900
        assert (error.path, error.offset, error.packet) == (str(cut), their_error.offset, their_error.packet)
        assert str(error).endswith(
            "gzip stream: compressed file ended before the "
            "end-of-stream marker was reached (gzip input: the offset "
            "counts decompressed bytes)"
        )

    def test_concatenated_members_and_zero_padding(self, tmp_path: Path) -> None:
        """``cat a.gz b.gz`` is one stream to gzip -d; trailing zeros are padding;
        trailing junk is an error after the packets."""
        import gzip

        plain = write_pcap(tmp_path / "x.pcap", [bytes([i]) * 100 for i in range(50)])
        data = plain.read_bytes()
        packed = tmp_path / "two.pcap.gz"
        packed.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]) + bytes(512))
        assert list(iter_records(packed)) == list(iter_records(plain))
        packed.write_bytes(gzip.compress(data) + b"junk")
        seen, error = _records_until_error(packed)
        assert seen == list(iter_records(plain))
        assert "not another gzip member" in error.message
