"""The shared CLI options (scapy_geneve.cli._options): one meaning in every command."""

import argparse
import datetime

import pytest

from scapy_geneve import registry
from scapy_geneve.cli import _options


def parser(*adders):
    p = argparse.ArgumentParser(prog="t")
    p.set_defaults(command="t")
    for add in adders:
        add(p)
    return p


def parse(adders, argv):
    return parser(*adders).parse_args(argv)


def usage_exit(adders, argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse(adders, argv)
    assert info.value.code == 2
    return capsys.readouterr().err


# -- ports ---------------------------------------------------------------------------------
def test_every_registry_port_option_exists():
    p = parser(_options.add_decoding_options)
    flags = {a for action in p._actions for a in action.option_strings}
    for rec in registry.records():
        if rec.port_option:
            assert rec.port_option in flags


def test_extra_ports_add_to_the_defaults_hex_and_commas():
    args = parse(
        [_options.add_decoding_options],
        ["--geneve-port", "0x17c2", "--vxlan-port", "9000,9001", "--stt-port", "7472"],
    )
    ports = _options.ports(args)
    assert isinstance(ports, registry.Ports)
    assert ports.geneve == registry.DEFAULT_PORTS.geneve | {0x17C2}
    assert ports.vxlan == registry.DEFAULT_PORTS.vxlan | {9000, 9001}
    assert 48879 in ports.vxlan  # Cisco ACI stays a default
    assert ports.stt == {7471, 7472}
    assert ports.gpe == registry.DEFAULT_PORTS.gpe


def test_no_port_options_gives_the_registry_defaults():
    args = parse([_options.add_decoding_options], [])
    assert _options.ports(args) == registry.DEFAULT_PORTS
    assert _options.scan_kwargs(args) == {
        "ports": registry.DEFAULT_PORTS,
        "l2tp_cookie": 0,
        "l2tp_l2ss": False,
    }


@pytest.mark.parametrize("value", ["65536", "-1", "port", "0x"])
def test_bad_port_is_a_usage_error(value, capsys):
    err = usage_exit([_options.add_decoding_options], ["--geneve-port", value], capsys)
    assert "--geneve-port" in err


def test_l2tp_out_of_band():
    args = parse([_options.add_decoding_options], ["--l2tp-cookie", "4", "--l2tp-l2ss"])
    assert _options.l2tp(args) == (4, True)
    assert _options.scan_kwargs(args)["l2tp_cookie"] == 4


def test_l2tp_cookie_only_0_4_8(capsys):
    assert "--l2tp-cookie" in usage_exit([_options.add_decoding_options], ["--l2tp-cookie", "2"], capsys)


# -- selection -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, classes",
    [
        ("ovn", [0x0102]),
        ("OVS", [0x0101]),
        ("linux", [0x0100]),
        ("0x0102", [0x0102]),
        ("258", [0x0102]),
        ("Open Virtual Networking (OVN)", [0x0102]),
        ("amazon", [0x0105] + list(range(0x0108, 0x0111))),
        ("ovn,0xffff", [0x0102, 0xFFFF]),
    ],
)
def test_option_class_by_registry_name_or_number(name, classes):
    assert _options.option_classes(name) == classes


@pytest.mark.parametrize(
    "text, says",
    [
        ("nosuchvendor", "neither a number"),
        ("0x10000", "16-bit"),
        ("-1", "16-bit"),
        ("c", "several"),  # Cilium, Cisco, Cloud of China Telecom, Corelight, cPacket
    ],
)
def test_option_class_refused(text, says):
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        _options.option_classes(text)


def test_selection_builds_the_packet_filter():
    args = parse(
        [_options.add_selection_options],
        ["--vni", "5,0x10", "--kind", "gpe", "--option-class", "ovn", "--option-type", "0x80"],
    )
    pf = _options.packet_filter(args)
    assert pf.vni == {5, 16}
    assert pf.kind == {"vxlan-gpe"}
    assert pf.option_class == {0x0102}
    assert pf.option_type == {0x80}


def test_unknown_kind_names_the_choices(capsys):
    err = usage_exit([_options.add_selection_options], ["--kind", "gre2"], capsys)
    assert "geneve" in err and "l2tpv3" in err


@pytest.mark.parametrize("argv", [["--vni", "-1"], ["--vni", str(1 << 64)], ["--option-type", "256"]])
def test_out_of_range_selection_is_a_usage_error(argv, capsys):
    usage_exit([_options.add_selection_options], argv, capsys)


def test_identifier_wider_than_the_kind_is_refused(capsys):
    args = parse([_options.add_selection_options], ["--vni", str(1 << 24), "--kind", "vxlan"])
    with pytest.raises(SystemExit) as info:
        _options.packet_filter(args)
    assert info.value.code == 2
    assert "24 bits" in capsys.readouterr().err
    # the same value is a valid L2TPv3 session ID (32 bits)
    args = parse([_options.add_selection_options], ["--vni", str(1 << 24), "--kind", "l2tpv3"])
    assert _options.packet_filter(args).vni == {1 << 24}


# -- tcpdump's habits ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_count_must_be_positive(value, capsys):
    assert "-c/--count" in usage_exit([_options.add_count_option], ["-c", value], capsys)


def test_count_numeric_quiet():
    args = parse(
        [_options.add_count_option, _options.add_numeric_option, _options.add_quiet_option],
        ["-c", "3", "-n", "-q"],
    )
    assert (args.count, args.numeric, args.quiet) == (3, True, True)


@pytest.mark.parametrize(
    "flags, mode",
    [([], 0), (["-t"], 1), (["-tt"], 2), (["-ttt"], 3), (["-tttt"], 4), (["-ttttt"], 5), (["-t", "-t"], 2)],
)
def test_t_family_counts(flags, mode):
    assert _options.time_format(parse([_options.add_time_options], flags)).mode == mode


def test_six_t_is_a_usage_error(capsys):
    args = parse([_options.add_time_options], ["-tttttt"])
    with pytest.raises(SystemExit) as info:
        _options.time_format(args)
    assert info.value.code == 2


# 2009-02-13 23:31:30.123456 UTC, then 1.5 s and 61 s later
T0 = 1234567890123456000
T1 = T0 + 1500000000
T2 = T0 + 61000000000


@pytest.mark.parametrize(
    "mode, expected",
    [
        (0, ["23:31:30.123456", "23:31:31.623456", "23:32:31.123456"]),
        (1, ["", "", ""]),
        (2, ["1234567890.123456", "1234567891.623456", "1234567951.123456"]),
        (3, ["00:00:00.000000", "00:00:01.500000", "00:00:59.500000"]),
        (
            4,
            [
                "2009-02-13 23:31:30.123456 UTC",
                "2009-02-13 23:31:31.623456 UTC",
                "2009-02-13 23:32:31.123456 UTC",
            ],
        ),
        (5, ["00:00:00.000000", "00:00:01.500000", "00:01:01.000000"]),
    ],
)
def test_time_formats_as_tcpdump_in_utc(mode, expected):
    fmt = _options.TimeFormat(mode, utc=True)
    assert [fmt(t) for t in (T0, T1, T2)] == expected


def test_local_time_is_the_default_and_says_its_zone():
    fmt = _options.TimeFormat(4)
    local = datetime.datetime.fromtimestamp(T0 // 10**9).astimezone()
    assert fmt(T0) == local.strftime("%Y-%m-%d %H:%M:%S") + ".123456 " + local.strftime("%Z")


def test_packet_without_time_shows_a_dash():
    fmt = _options.TimeFormat(0, utc=True)
    assert fmt(None) == "-"
    assert fmt(T0) == "23:31:30.123456"


# -- files -------------------------------------------------------------------------------
def test_r_is_the_positional_input(capsys):
    def add(p):
        _options.add_input(p, "capture")

    assert _options.input_path(parse([add], ["-r", "a.pcap"])) == "a.pcap"
    assert _options.input_path(parse([add], ["a.pcap"])) == "a.pcap"
    with pytest.raises(SystemExit) as info:
        _options.input_path(parse([add], ["a.pcap", "-r", "b.pcap"]))
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        _options.input_path(parse([add], []))
    assert "no input" in capsys.readouterr().err


def test_optional_input_may_be_absent():
    def add(p):
        _options.add_input(p, "capture", optional=True)

    assert _options.input_path(parse([add], [])) is None


def test_w_is_the_positional_output(capsys):
    def add(p):
        _options.add_output(p, "out")

    assert _options.output_path(parse([add], ["-w", "o.pcap"])) == "o.pcap"
    with pytest.raises(SystemExit):
        _options.output_path(parse([add], ["o.pcap", "-w", "p.pcap"]))
    with pytest.raises(SystemExit):
        _options.output_path(parse([add], []))


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["o.pcap"], ("pcap", False)),
        (["o.pcapng"], ("pcapng", False)),
        (["o.pcap.gz"], ("pcap", True)),
        (["o.PCAPNG.GZ"], ("pcapng", True)),
        (["o.bin"], (None, False)),
        (["-"], (None, False)),
        (["-F", "pcapng", "o.pcap"], ("pcapng", False)),
        (["-F", "pcap", "o.gz"], ("pcap", True)),
    ],
)
def test_output_format_by_flag_then_name(argv, expected):
    def add(p):
        _options.add_output(p, "out")
        _options.add_format_option(p)

    assert tuple(_options.output_format(parse([add], argv))) == expected


def test_bad_output_format_is_a_usage_error(capsys):
    assert "-F" in usage_exit([_options.add_format_option], ["-F", "erf"], capsys)
