"""Start-up: the ``scapy-geneve`` command binds Scapy's layers on first use.

The console script enters through ``scapy_geneve_main`` (setup.cfg), so the commands
that read captures with the wire decoder (stats, filter, show, lint, export) start
without importing Scapy, and print the same bytes as ``scapy_geneve.cli.main`` with
the eager package (this process: ``import scapy_geneve`` binds every layer at import).
Commands that build or dissect with Scapy (show --detail, segment, compare, conform,
shell) load the layers themselves and still work there.
"""

import configparser
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

import scapy_geneve
from scapy_geneve.cli import COMMANDS, build_parser, chosen, main

ROOT = Path(__file__).resolve().parent.parent
PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))

# show's text and JSON read the field layout of a typed Geneve option (OVN, INT, ...)
# from the Scapy layer that declares it (capture/summary.py, one fact in one place): on a
# capture that carries one, show imports the layers.  Nothing else imports Scapy.
TYPED_OPTION_CAPTURES = {"geneve_ipv6_underlay.pcap", "geneve_malformed.pcap", "geneve_options.pcap"}


def console_script() -> str:
    """``module:function`` of the scapy-geneve console script, as setup.cfg declares it."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    for line in cfg["options.entry_points"]["console_scripts"].splitlines():
        name, _, target = line.partition("=")
        if name.strip() == "scapy-geneve":
            return target.strip()
    raise AssertionError("setup.cfg declares no scapy-geneve console script")


# What the installed console script does (``sys.exit(main())``, arguments in sys.argv), for
# each of a list of argument lists in turn in one interpreter (a fresh one per test: one
# start-up, not one per capture); after each, what it printed on fds 1 and 2, its exit
# status and the modules it imported (the first command to import a module is named).
RUNNER = textwrap.dedent("""
    import importlib, json, os, sys, tempfile, traceback
    sys.path.insert(0, %r)
    entry, report, commands = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module, _, function = entry.partition(":")
    main = getattr(importlib.import_module(module), function)

    def run(argv, out, err):
        sys.argv = ["scapy-geneve", *argv]
        saved = [os.dup(1), os.dup(2)]
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        try:
            return main()
        except SystemExit as exc:  # --help
            return exc.code or 0
        except BaseException:
            traceback.print_exc()
            return "raised"
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            [os.close(fd) for fd in saved]

    results, seen = [], set(sys.modules)
    for argv in commands:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = run(argv, out, err)
            out.seek(0), err.seek(0)
            results.append([code, out.read().hex(), err.read().decode(errors="replace"),
                            sorted(set(sys.modules) - seen)])
        seen = set(sys.modules)
    with open(report, "w") as f:
        json.dump(results, f)
""") % str(ROOT)


class Run:
    """One command of a batch: exit status, standard output and error, and the modules it
    was the first to import."""

    def __init__(self, code: int, out: str, err: str, modules: List[str]) -> None:
        self.code, self.out, self.err, self.modules = code, bytes.fromhex(out), err, modules

    @property
    def scapy(self) -> List[str]:
        return [m for m in self.modules if m == "scapy" or m.startswith("scapy.")]


def run_commands(
    commands: Sequence[Sequence[str]],
    cwd: Path,
    stdin: Optional[bytes] = None,
    env: Optional[Dict[str, str]] = None,
) -> List[Run]:
    """The console script's entry point in one fresh interpreter, each command in turn."""
    report = cwd / "report.json"
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            console_script(),
            str(report),
            json.dumps([list(c) for c in commands]),
        ],
        cwd=str(cwd),
        input=stdin,
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0 and report.exists(), res.stderr.decode()[-3000:]
    runs = [Run(*result) for result in json.loads(report.read_text())]
    report.unlink()
    assert len(runs) == len(commands)
    return runs


def run_in_process(args: Sequence[str], capfdbinary: pytest.CaptureFixture[bytes]) -> Tuple[int, bytes]:
    """``scapy_geneve.cli.main`` here, where ``import scapy_geneve`` bound every layer."""
    capfdbinary.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # --help
        code = int(exc.code or 0)
    sys.stdout.flush()
    return code, capfdbinary.readouterr().out


def assert_same(cli: Run, args: Sequence[str], capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """The command printed what ``scapy_geneve.cli.main`` prints here, with the same status."""
    where = " ".join(args)
    assert (cli.code, cli.out) == run_in_process(args, capfdbinary), where + "\n" + cli.err[-2000:]


# Each pcap command with its typical options; {pcap} and {out} (a file in tmp_path) are filled in.
PCAP_COMMANDS: Dict[str, List[List[str]]] = {
    "stats": [["stats", "{pcap}"], ["stats", "--json", "--top", "3", "{pcap}"]],
    "filter": [
        ["filter", "{pcap}", "-"],
        ["filter", "--option-class", "ovn", "--kind", "geneve", "{pcap}", "-"],
    ],
    "show": [
        ["show", "{pcap}"],
        ["show", "-T", "json", "{pcap}"],
        ["show", "-T", "csv", "--malformed", "{pcap}"],
    ],
    "lint": [
        ["lint", "{pcap}"],
        ["lint", "--format", "junit", "{pcap}"],
        ["lint", "--format", "sarif", "{pcap}"],
    ],
    "export": [["export", "-q", "-F", "jsonl", "-o", "{out}", "{pcap}"]],
}


def test_every_pcap_command_is_checked():
    assert set(PCAP_COMMANDS) == {"stats", "filter", "show", "lint", "export"} <= set(COMMANDS)


def _typed_last(pcap: Path) -> bool:
    """show on a capture with a typed Geneve option imports the layers: run those last, so
    that every command before them is seen to import no Scapy."""
    return pcap.name in TYPED_OPTION_CAPTURES


@pytest.mark.parametrize("command", sorted(PCAP_COMMANDS))
def test_pcap_commands_start_without_scapy_and_print_the_same_bytes(
    command: str, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert "scapy.layers.inet" in sys.modules  # this process: the eager package
    out_dir = tmp_path / "out"
    jobs = [
        (pcap, template) for pcap in sorted(PCAPS, key=_typed_last) for template in PCAP_COMMANDS[command]
    ]
    commands = [
        [a.format(pcap=p, out=out_dir / ("%d.jsonl" % i)) for a in t] for i, (p, t) in enumerate(jobs)
    ]
    out_dir.mkdir()
    cli_runs = run_commands(commands, tmp_path)
    cli_files = {f.name: f.read_bytes() for f in out_dir.iterdir()}
    shutil.rmtree(out_dir)
    out_dir.mkdir()
    for args, cli in zip(commands, cli_runs):
        assert_same(cli, args, capfdbinary)
        if cli.scapy:  # only for the typed options' layouts
            where = " ".join(args)
            assert command == "show" and Path(args[-1]).name in TYPED_OPTION_CAPTURES, where
            assert "scapy_geneve.layers.geneve_options" in cli.modules, where
    assert {f.name: f.read_bytes() for f in out_dir.iterdir()} == cli_files, "the files written differ"


def test_python_dash_m_starts_without_scapy(tmp_path: Path) -> None:
    pcap = str(ROOT / "pcaps" / "vxlan.pcap")
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "scapy_geneve", "stats", pcap],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if "|" in line]
    assert "scapy_geneve.capture.decode" in imported
    assert [m for m in imported if m == "scapy" or m.startswith("scapy.")] == []
    assert "vxlan" in res.stdout


# -- the commands that build or dissect with Scapy ------------------------------------------
@pytest.mark.usefixtures("no_debug_dissector")  # as the command runs: a bad layer shows as Raw
def test_show_detail_dissects_as_with_the_eager_package(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    commands = [["show", "--detail", "-t", str(pcap)] for pcap in PCAPS]
    runs = run_commands(commands, tmp_path)
    assert "scapy_geneve.layers" in runs[0].modules
    for args, cli in zip(commands, runs):
        assert_same(cli, args, capfdbinary)
        assert "###[ Ethernet ]###" in cli.out.decode(), args


def test_segment_writes_the_same_bytes(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    modes = ([], ["--mss", "40"], ["--coalesce"], ["--finish-checksums"])
    runs = [(pcap, mode, "%s.%d.pcap" % (pcap.stem, i)) for pcap in PCAPS for i, mode in enumerate(modes)]
    (tmp_path / "cli").mkdir(), (tmp_path / "here").mkdir()
    cli_runs = run_commands([["segment", "-q", str(p), "cli/" + o, *m] for p, m, o in runs], tmp_path)
    for (pcap, mode, out), cli in zip(runs, cli_runs):
        code, _ = run_in_process(
            ["segment", "-q", str(pcap), str(tmp_path / "here" / out), *mode], capfdbinary
        )
        where = "segment %s %s" % (" ".join(mode), pcap.name)
        assert cli.code == code, where + cli.err[-2000:]
        if code == 0:
            assert (tmp_path / "cli" / out).read_bytes() == (tmp_path / "here" / out).read_bytes(), where


@pytest.mark.parametrize(
    "commands",
    [
        [["compare"], ["compare", "--json"], ["compare", "--underlay", "ipv6", "--mtu", "9000"]],
        [["conform", "--list"]],
        [["stats", "--help"], ["--help"]],
    ],
    ids=["compare", "conform", "help"],
)
def test_compare_conform_and_help_print_the_same(
    commands: List[List[str]], tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    for args, cli in zip(commands, run_commands(commands, tmp_path)):
        assert_same(cli, args, capfdbinary)
        assert cli.out, args


def test_the_shell_dissects_geneve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = (
        "p = Ether(bytes(Ether()/IP()/UDP(dport=6081)/Geneve(vni=7, "
        "options=[GeneveOptionOVN(ingress_port=3)])/Ether()/IP()))\n"
        "print(p[Geneve].vni, p[GeneveOptionOVN].ingress_port, len(lint(p)) >= 0, PcapWriter.__module__)\n"
    )
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    (shell,) = run_commands([["shell", "--python"]], tmp_path, stdin=script.encode(), env=env)
    assert shell.code == 0, shell.err[-2000:]
    assert "7 3 True scapy.utils" in shell.out.decode(), shell.err[-2000:]


# -- the library: layers bound at import, the same public names -------------------------------
GENEVE_WIRE = (
    "020000000002 020000000001 0800"  # Ethernet
    "4500003c 0000 4000 4011 0000 c0000201 c0000202"  # IPv4, UDP
    "c350 17c1 0028 0000"  # UDP 50000 -> 6081
    "0000 6558 00002a 00"  # Geneve: no options, Transparent Ethernet Bridging, VNI 42
    "020000000004 020000000003 0800"  # inner Ethernet
    "45000014 0000 0000 4001 0000 0a000001 0a000002"  # inner IPv4 (ICMP, no payload)
).replace(" ", "")


def _python(code: str, cwd: Path) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


def test_import_binds_every_layer_at_import(tmp_path: Path) -> None:
    out = _python(
        """
        import sys
        import scapy_geneve
        from scapy.layers.l2 import Ether
        p = Ether(bytes.fromhex(%r))
        print(type(p.payload.payload.payload).__name__, p.payload.payload.payload.vni,
              "scapy_geneve.layers.l2tpv3" in sys.modules, "scapy_geneve.tunnels.l2tpv3" in sys.modules)
        """
        % GENEVE_WIRE,
        tmp_path,
    )
    assert out == "Geneve 42 True True"


API = """
    import json, sys
    import scapy_geneve
    print(json.dumps([list(scapy_geneve.__all__),
                      sorted(n for n in dir(scapy_geneve) if not n.startswith("_")),
                      {n: getattr(scapy_geneve, n).__module__ for n in ("Geneve", "segment", "PcapWriter")}]))
"""


def test_the_command_process_has_the_same_public_names_on_first_use(tmp_path: Path) -> None:
    eager = json.loads(_python(API, tmp_path))
    on_demand = _python(
        "import sys\nsys.path.insert(0, %r)\nimport scapy_geneve_main, scapy_geneve\n"
        "assert 'scapy' not in sys.modules\n" % str(ROOT) + textwrap.dedent(API),
        tmp_path,
    )
    assert json.loads(on_demand) == eager
    assert eager[0] == list(scapy_geneve.__all__)


def test_star_import_in_the_command_process(tmp_path: Path) -> None:
    out = _python(
        "import sys\nsys.path.insert(0, %r)\nimport scapy_geneve_main\n"
        "from scapy_geneve import *\n"
        "from scapy_geneve import registry, scan_batches\n"
        "print(Geneve.__module__, callable(run_vectors), registry.__name__)\n" % str(ROOT),
        tmp_path,
    )
    assert out == "scapy_geneve.layers.geneve True scapy_geneve.registry"


# -- the parser: only the command being run is imported ----------------------------------------
def test_the_parser_imports_only_the_command_run() -> None:
    assert chosen(["stats", "x.pcap"]) == ["stats"]
    for argv in ([], ["--help"], ["--version"], ["nope"], ["-h", "stats"]):
        assert chosen(argv) == COMMANDS, argv


@pytest.mark.parametrize("command", COMMANDS)
def test_one_command_parser_equals_the_full_one(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    helps = []
    for parser in (build_parser([command]), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1]
