"""``scapy-geneve``: the command line.  A leaf: nothing in the package imports it.

Each sub-command lives in its own module here and exposes
``register(subparsers) -> None``, which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns the exit code.
"""

import argparse
import importlib
import sys
from typing import List, Optional

from scapy_geneve.errors import BuildError, CaptureError

# One module per command, in the order ``--help`` lists them.
COMMANDS = ["show", "stats", "filter", "lint", "conform", "segment", "compare", "shell"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from scapy_geneve import __version__

    parser = argparse.ArgumentParser(
        prog="scapy-geneve",
        description="Geneve, VXLAN, NVGRE, STT and L2TPv3 captures: show, stats, "
                    "filter, lint, segment, compare.")
    parser.add_argument("--version", action="version",
                        version="scapy-geneve %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module("scapy_geneve.cli." + name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CaptureError as exc:
        print("scapy-geneve %s: error: %s" % (args.command, exc), file=sys.stderr)
        return EXIT_ERROR
    except BuildError as exc:
        print("scapy-geneve %s: cannot build: %s" % (args.command, exc), file=sys.stderr)
        return EXIT_ERROR
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print("scapy-geneve %s: error: %s: %s" % (args.command, exc.filename, exc.strerror),
              file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `scapy-geneve show big.pcap | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
