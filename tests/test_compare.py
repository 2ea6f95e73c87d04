"""The comparison: its measured numbers against the header sizes the specs give."""

import json

import pytest

from scapy_geneve import compare
from scapy_geneve.cli import main

# Header sizes from the specs (bytes), used only to check what compare() measures:
IPV4, IPV6, UDP_H, TCP_H, ETH = 20, 40, 8, 20, 14
TUNNEL = {
    "geneve": UDP_H + 8,  # RFC 8926 §3.4 base header
    "geneve+options": UDP_H + 8 + 32,  # + GWLB endpoint (12) + attachment (12) + cookie (8)
    "vxlan": UDP_H + 8,  # RFC 7348 §5
    "nvgre": 8,  # RFC 7637: GRE with key
    "stt": TCP_H + 18,  # draft-davie-stt-08: TCP-like + frame header
    "l2tpv3/ip": 4 + 4,  # RFC 3931 §4.1.1: session ID + 4-byte cookie
    "l2tpv3/udp": UDP_H + 4 + 4 + 4,  # RFC 3931 §4.1.2.1: + flags/version/reserved
}
ID_BITS = {
    "geneve": 24,
    "geneve+options": 24,
    "vxlan": 24,
    "nvgre": 24,
    "stt": 64,
    "l2tpv3/ip": 32,
    "l2tpv3/udp": 32,
}


@pytest.fixture(scope="module", params=["ipv4", "ipv6"])
def table(request):
    return compare(inner_size=1400, underlay=request.param, mtu=1500)


def rows(table):
    return {r.name: r for r in table.rows}


def test_every_encapsulation_is_compared(table):
    assert list(rows(table)) == list(TUNNEL)


def test_overhead_matches_the_header_sizes(table):
    l3 = IPV6 if table.underlay == "ipv6" else IPV4
    for name, row in rows(table).items():
        assert row.overhead == l3 + TUNNEL[name], name


def test_inner_mtu_is_what_is_left_of_the_underlay_mtu(table):
    l3 = IPV6 if table.underlay == "ipv6" else IPV4
    for name, row in rows(table).items():
        if name == "stt":
            assert row.inner_mtu == 65535 - 18 - ETH  # one STT frame, segmented like TCP
        else:
            assert row.inner_mtu == 1500 - l3 - TUNNEL[name] - ETH, name


def test_efficiency_curve(table):
    l3 = IPV6 if table.underlay == "ipv6" else IPV4
    for name, row in rows(table).items():
        for size, eff in row.efficiency:
            if name != "stt" and size > row.inner_mtu:
                assert eff is None, (name, size)
            elif name != "stt" or size + ETH + 18 <= 1500 - l3 - TCP_H:
                assert eff == round(size / (size + ETH + l3 + TUNNEL[name]), 4), (name, size)
            else:
                assert eff is not None and eff < 1
    # A 9000-byte inner packet: an STT frame of 18 + 14 + 9000 bytes in segments of
    # 1460 (IPv4) or 1440 (IPv6) bytes: 7 of them.
    assert dict(rows(table)["stt"].segments_at)[9000] == 7


def test_identifier_widths(table):
    for name, row in rows(table).items():
        assert row.id_bits == ID_BITS[name], name


def test_only_l2tpv3_needs_per_session_state_to_find_the_inner_frame(table):
    for name, row in rows(table).items():
        assert row.stateless == (not name.startswith("l2tpv3")), name


def test_entropy_sources(table):
    fl = ["IPv6.fl"] if table.underlay == "ipv6" else []
    want = {
        "geneve": ["UDP.sport"],
        "vxlan": ["UDP.sport"],
        "nvgre": ["NVGRE.flowid"],
        "stt": ["TCP.sport"],
        "l2tpv3/ip": [],
        "l2tpv3/udp": [],
    }
    for name, row in rows(table).items():
        assert sorted(row.entropy) == sorted(fl + want[name.split("+")[0]]), name


def test_extension_room(table):
    ext = {name: row.max_extension for name, row in rows(table).items()}
    assert ext["geneve"] == 252  # Opt Len: 63 words
    assert ext["l2tpv3/ip"] == 8 + 4 - 0  # 8-byte cookie + sublayer vs none
    assert ext["vxlan"] == ext["nvgre"] == ext["stt"] == 0


def test_cli_json(capsys):
    assert main(["compare", "--json", "--mtu", "9000", "--inner-size", "8000"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in data["rows"]}
    assert data["mtu"] == 9000 and by_name["vxlan"]["inner_mtu"] == 9000 - 20 - 16 - 14


def test_cli_table(capsys):
    assert main(["compare", "--underlay", "ipv6"]) == 0
    out = capsys.readouterr().out
    assert "Underlay IPv6" in out and "l2tpv3/udp" in out and "NVGRE.flowid" in out


def test_cli_png_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["compare", "--plot", str(tmp_path / "eff.png"), "--sizes", "64,1400"]) == 0
    assert (tmp_path / "eff.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_plot_suffix_it_cannot_write_says_which_work(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["compare", "--plot", str(tmp_path / "x.txt")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert (
        "cannot plot to .txt" in captured.err
        and ".png" in captured.err
        and ".pdf" in captured.err
        and ".svg" in captured.err
    )
    assert not (tmp_path / "x.txt").exists()


def test_cli_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert main(["compare", "--plot", str(tmp_path / "eff.png")]) == 2
    captured = capsys.readouterr()
    assert "scapy-geneve[plot]" in captured.err and captured.out == ""
    assert "Traceback" not in captured.err and not (tmp_path / "eff.png").exists()


def test_plot_shows_every_line_and_says_why_lines_end():
    pytest.importorskip("matplotlib")
    from scapy_geneve.cli.compare import efficiency_figure

    cmp = compare(sizes=[64, 512, 1450, 1500, 9000])
    fig = efficiency_figure(cmp)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 7
    # geneve = vxlan and nvgre = l2tpv3/ip in every point: drawn apart, and said so.
    assert "vxlan (same values as geneve; drawn 3 pt higher)" in legend
    assert "l2tpv3/ip (same values as nvgre; drawn 3 pt higher)" in legend
    lines = {line.get_label(): line for line in ax.get_lines()}
    styles = {
        (line.get_marker(), line.get_linestyle()) for name, line in lines.items() if not name.startswith("_")
    }
    assert len(styles) == 7  # no two entries look alike
    fig.canvas.draw()
    shown = {
        name.split(" ")[0]: line.get_transform().transform(line.get_xydata())
        for name, line in lines.items()
        if not name.startswith("_")
    }
    assert (shown["vxlan"] != shown["geneve"]).any()
    assert (shown["l2tpv3/ip"] != shown["nvgre"]).any()
    notes = "\n".join(t.get_text() for t in fig.texts)
    assert "geneve: ends at 1450: an inner packet over 1450 bytes" in notes
    assert "exceeds the 1500-byte MTU" in notes and "stt:" not in notes


def test_cli_mtu_anywhere_in_the_advertised_range(capsys):
    # issue 12: --mtu 40000 failed (an STT probe of twice the MTU is over 64 KB).
    for mtu in ("576", "40000", "65535"):
        assert main(["compare", "--mtu", mtu, "--sizes", "64,1400"]) == 0, mtu
    assert "MTU 65535" in capsys.readouterr().out


def test_compare_leaves_the_session_table_alone():
    from scapy.config import conf

    cfg = conf.contribs.setdefault("scapy_geneve", {})
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    compare(sizes=[64])
    assert {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()} == before


def test_rows_read_the_registry():
    from scapy_geneve import registry

    for row in compare(sizes=[64]).rows:
        rec = registry.get(row.kind)
        assert (row.id_bits, row.header_len) == (rec.id_bits, rec.header_len)
        assert row.id_field.endswith("." + rec.id_name)


def test_no_assert_statements_in_the_library():
    import ast
    import pathlib

    import scapy_geneve.tunnels as tunnels

    for path in pathlib.Path(tunnels.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Assert)], path


@pytest.mark.parametrize(
    "argv",
    [
        ["--inner-size", "10"],
        ["--mtu", "100"],
        ["--sizes", "a,b"],
        ["--inner-size", "100000"],
        ["--sizes", "10,20"],
        ["--sizes", "64,70000"],
    ],
)
def test_cli_bad_arguments_exit_2(argv, capsys):
    try:
        code = main(["compare"] + argv)
    except SystemExit as exc:  # argparse rejects --sizes a,b itself
        code = exc.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--inner-size", "100000"], "inner_size: value 100000 is over 65535"),
        (["--sizes", "64,20"], "sizes: value 20 is below 28"),
    ],
)
def test_cli_names_the_impossible_size(argv, says, capsys):
    # An inner IP packet is 28..65535 bytes: anything else is an error naming the
    # option and the value, not a '-' in the table or a struct.error traceback.
    assert main(["compare"] + argv) == 2
    captured = capsys.readouterr()
    assert says in captured.err and captured.out == ""


def test_cli_plot_into_a_missing_directory_fails_before_any_work(tmp_path, capsys):
    target = tmp_path / "no-such-dir" / "eff.png"
    assert main(["compare", "--plot", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no table, then a late failure
    assert str(target) in captured.err and "does not exist" in captured.err
    assert main(["compare", "--plot", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_sizes_over_the_mtu_are_not_built_but_marked(table):
    # 9000-byte inner packets at MTU 1500: no UDP/GRE/IP kind carries them whole.
    for name, row in rows(table).items():
        eff = dict(row.efficiency)[9000]
        assert (eff is None) == (name != "stt"), name


def test_only_stt_leaves_inner_headers_out_of_some_packets(table):
    # draft-davie-stt-08: the STT frame header and the inner frame start in the
    # segment at offset 0; later segments are frame bytes only.
    for name, row in rows(table).items():
        assert row.inner_in_every_packet == (name != "stt"), name


def test_cli_table_marks_stt_first_segment_only(capsys):
    assert main(["compare"]) == 0
    (stt,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("stt ")]
    assert "1st seg" in stt
