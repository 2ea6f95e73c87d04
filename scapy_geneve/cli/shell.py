"""``scapy-geneve shell``: Scapy's interactive shell with every layer loaded."""

import argparse

BANNER = """scapy-geneve {version}: Geneve (RFC 8926), VXLAN/GPE/GBP, NVGRE, STT, L2TPv3 loaded.
  p = Ether()/IP(dst="192.0.2.2")/UDP()/Geneve(vni=42, options=[GeneveOptionOVN(ingress_port=1)])/Ether()/IP()/ICMP()
  p.show2(); lint(p); decapsulate(p); segment(...)
  rdpcap(...) dissects Geneve on UDP 6081 with typed options."""


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("shell", help="Scapy's interactive shell with every scapy-geneve layer loaded",
                       description="Start Scapy's interactive shell (IPython when installed) "
                                   "with scapy-geneve's layers and helpers in the namespace.")
    p.add_argument("--python", action="store_true",
                   help="use the plain Python shell instead of IPython")
    p.set_defaults(func=run)


def namespace() -> dict:
    """What the shell has besides Scapy's own names: all of scapy_geneve's API."""
    import scapy_geneve

    ns = {name: getattr(scapy_geneve, name) for name in scapy_geneve.__all__}
    ns["scapy_geneve"] = scapy_geneve
    return ns


def run(args: argparse.Namespace) -> int:
    from scapy.config import conf
    from scapy.main import interact, load_contrib

    from scapy_geneve import __version__

    for name in ("mpls", "nsh"):
        load_contrib(name)
    if args.python:
        conf.interactive_shell = "python"
    interact(mydict=namespace(), argv=["scapy-geneve"],
             mybanner=BANNER.format(version=__version__))
    return 0
