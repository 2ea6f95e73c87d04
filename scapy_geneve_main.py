"""The ``scapy-geneve`` console script's entry point (setup.cfg), outside the package.

Python runs ``scapy_geneve/__init__.py`` before any of its submodules, so the command
says who it is before that: importing this module marks the process as the command.
There ``import scapy_geneve`` binds the Scapy layers on first use instead of at import,
and the commands that read captures through the Scapy-free wire decoder (show, stats,
filter, lint, export) start without importing Scapy; a command that dissects or builds
with Scapy imports :mod:`scapy_geneve.layers` where it does.  ``python -m scapy_geneve``
is recognised by the package itself.  Anywhere else, a script, the Scapy shell, pytest,
``import scapy_geneve`` binds every layer at import.  Import this module only to run
the command.
"""

from typing import Any, List, Optional

# Read by scapy_geneve/__init__.py (``_layers_on_demand``).
LAYERS_ON_DEMAND = True


def main(argv: Optional[List[str]] = None) -> int:
    """``scapy-geneve ARGS``: :func:`scapy_geneve.cli.main`, in the command's mode."""
    from scapy_geneve.cli import main as run

    return run(argv)


def scapy_ext(plg: Any) -> None:
    """Scapy's extension loader imports every top-level module the distribution installs
    (``top_level.txt``: ``scapy_geneve`` first, then this one) and wants this hook in each:
    without it Scapy warns "'scapy-geneve' does not look like a Scapy plugin !" and leaves
    the extension out of ``conf.exts``.  ``scapy_geneve.scapy_ext`` has registered it all."""
