"""``scapy-geneve``: the command line.  A leaf: nothing in the package imports it.

Each sub-command lives in its own module here and exposes
``register(subparsers) -> None``, which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns the exit code.
"""

import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence

from scapy_geneve.capture.interrupt import graceful_signals
from scapy_geneve.errors import BuildError, CaptureError

# One module per command, in the order ``--help`` lists them.
COMMANDS = ["show", "stats", "filter", "export", "lint", "conform", "segment", "compare", "shell"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of ``commands`` (importing their modules: each command imports what it runs on)."""
    from scapy_geneve import __version__

    parser = argparse.ArgumentParser(
        prog="scapy-geneve",
        description="Geneve, VXLAN, NVGRE, STT and L2TPv3 captures: show, stats, "
        "filter, lint, segment, compare.",
    )
    parser.add_argument("--version", action="version", version="scapy-geneve %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in commands:
        importlib.import_module("scapy_geneve.cli." + name).register(sub)
    return parser


def chosen(argv: Sequence[str]) -> Sequence[str]:
    """The commands whose parsers ``argv`` needs: the one it starts with, else every one
    (``--help``, ``--version`` and a missing or unknown command list them).  Importing
    only the command's module keeps ``stats`` from importing what ``conform`` runs on."""
    return argv[:1] if argv[:1] and argv[0] in COMMANDS else COMMANDS


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; every way it can end is one exit code and at most one
    line on stderr, never a traceback:

    0 done, 1 findings (the command says), 2 error (bad input, unusable OUT, any
    OSError: the path and the reason), 130/143/129 stopped by SIGINT/SIGTERM/
    SIGHUP after keeping what was done (see :mod:`scapy_geneve.capture.interrupt`),
    2 when the reader of standard output went away (``| head -1``), as tcpdump
    reports "Unable to write output: Broken pipe" and fails.
    """
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(chosen(argv))
    args = parser.parse_args(argv)
    name = "scapy-geneve %s" % args.command
    try:
        with graceful_signals():
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a full disk or a closed pipe is reported here, not at exit
            return code
    except CaptureError as exc:
        return _fail("%s: error: %s" % (name, exc))
    except BuildError as exc:
        return _fail("%s: cannot build: %s" % (name, exc))
    except BrokenPipeError:  # `scapy-geneve lint big.pcap | head -1`
        _silence_stdout()
        return _fail("%s: unable to write output: Broken pipe" % name)
    except OSError as exc:  # ENOSPC, EIO, ENOTDIR, ELOOP, ENAMETOOLONG, ...
        if exc.filename in (None, "<stdout>"):
            _silence_stdout()
        return _fail("%s: error: %s: %s" % (name, _where(exc), exc.strerror or exc))
    except KeyboardInterrupt as exc:  # SIGINT, or Interrupted (SIGTERM, SIGHUP)
        return int(getattr(exc, "exit_code", 130))


def _where(exc: OSError) -> str:
    if exc.filename in (None, "<stdout>"):
        return "standard output"
    if exc.filename2 is not None:
        return "%s -> %s" % (exc.filename, exc.filename2)
    return str(exc.filename)


def _fail(message: str) -> int:
    try:
        print(message, file=sys.stderr)
    except OSError:
        pass
    return EXIT_ERROR


def _silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush of
    what is still buffered cannot fail again (and print a traceback) at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
