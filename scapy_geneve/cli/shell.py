"""``scapy-geneve shell``: Scapy's interactive shell with every layer loaded.

IPython is an extra (``pip install 'scapy-geneve[shell]'``); without it, or with
``--python``, the plain Python shell starts.  Scapy's own names win: a name of
scapy_geneve's API that Scapy also defines (for example ``PcapWriter``) stays
Scapy's and is reached as ``scapy_geneve.<name>``.  The shell writes nothing
under the home directory beyond what Scapy's own shell writes there.
"""

import argparse
import importlib.util
import sys
from typing import Any, Dict, List

import scapy_geneve._api  # noqa: F401  (every layer and hook, as `import scapy_geneve` binds them)

BANNER = """scapy-geneve {version}: Geneve (RFC 8926), VXLAN/GPE/GBP, NVGRE, STT, L2TPv3 loaded.
  p = (Ether()/IP(dst="192.0.2.2")/UDP()
       /Geneve(vni=42, options=[GeneveOptionOVN(ingress_port=1)])/Ether()/IP()/ICMP())
  p.show2(); lint(p); decapsulate(p); segment(...)
  rdpcap(...) dissects Geneve on UDP 6081 with typed options."""

IPYTHON_MISSING = (
    "scapy-geneve shell: IPython is not installed (pip install "
    "'scapy-geneve[shell]'); starting the plain Python shell"
)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "shell",
        help="Scapy's interactive shell with every scapy-geneve layer loaded",
        description="Start Scapy's interactive shell (IPython, from the [shell] "
        "extra, when installed) with scapy-geneve's layers and "
        "helpers in the namespace.  Scapy's own names are never "
        "replaced: scapy_geneve.<name> reaches ours.",
    )
    p.add_argument(
        "--python",
        action="store_true",
        help="the plain Python shell, even when IPython is installed (Scapy's "
        "prestart file, which chooses the shell, is not read)",
    )
    p.set_defaults(func=run)


def namespace() -> Dict[str, Any]:
    """scapy_geneve's API for the shell, minus the names Scapy already defines."""
    import scapy.all as scapy_all

    import scapy_geneve

    scapy_names = vars(scapy_all)
    ns = {
        name: getattr(scapy_geneve, name)
        for name in scapy_geneve.__all__
        if name not in scapy_names or scapy_names[name] is getattr(scapy_geneve, name)
    }
    ns["scapy_geneve"] = scapy_geneve
    return ns


def shell_argv(plain: bool) -> List[str]:
    """Scapy's interact() arguments: ``-P`` (no prestart file) keeps the plain
    shell plain: Scapy's default prestart file sets ``interactive_shell = "auto"``,
    which would pick IPython again."""
    return ["scapy-geneve", "-P"] if plain else ["scapy-geneve"]


def run(args: argparse.Namespace) -> int:
    from scapy.config import conf
    from scapy.main import interact, load_contrib

    from scapy_geneve import __version__

    plain = bool(args.python)
    if not plain and importlib.util.find_spec("IPython") is None:
        print(IPYTHON_MISSING, file=sys.stderr)
        plain = True
    for name in ("mpls", "nsh"):
        load_contrib(name)
    conf.interactive_shell = "python" if plain else "ipython"
    banner = BANNER.format(version=__version__)
    if plain:  # Scapy's plain shell shows only its own banner: say ours first
        print(banner, file=sys.stderr)
    interact(mydict=namespace(), argv=shell_argv(plain), mybanner=None if plain else banner)
    return 0
