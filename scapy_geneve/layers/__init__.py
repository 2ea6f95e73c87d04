"""Every layer; importing this package binds them all into Scapy."""

from scapy_geneve.layers.geneve import *  # noqa: F401,F403
from scapy_geneve.layers.geneve import __all__ as _geneve_all
from scapy_geneve.layers.geneve_options import *  # noqa: F401,F403
from scapy_geneve.layers.geneve_options import __all__ as _options_all

__all__ = list(_geneve_all) + list(_options_all)
# (comparison layers: vxlan, nvgre, stt, l2tpv3 add their imports here)
