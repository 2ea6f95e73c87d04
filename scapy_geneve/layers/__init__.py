"""Every layer; importing this package binds them all into Scapy.

It also installs :mod:`scapy_geneve.layers.bigtcp`'s hooks, which read the
zero IPv4/IPv6/UDP lengths of BIG TCP super-packets as tcpdump does (and
leave every other packet to Scapy).
"""

from scapy_geneve.layers import bigtcp  # noqa: F401  (installs the BIG TCP hooks)

from scapy_geneve.layers.geneve import *  # noqa: F401,F403
from scapy_geneve.layers.geneve import __all__ as _geneve_all
from scapy_geneve.layers.geneve_options import *  # noqa: F401,F403
from scapy_geneve.layers.geneve_options import __all__ as _options_all

__all__ = list(_geneve_all) + list(_options_all)
# (comparison layers: vxlan, nvgre, stt, l2tpv3 add their imports here)
from scapy_geneve.layers.vxlan import *  # noqa: F401,F403,E402
from scapy_geneve.layers.vxlan import __all__ as _vxlan_all  # noqa: E402
from scapy_geneve.layers.nvgre import *  # noqa: F401,F403,E402
from scapy_geneve.layers.nvgre import __all__ as _nvgre_all  # noqa: E402
from scapy_geneve.layers.stt import *  # noqa: F401,F403,E402
from scapy_geneve.layers.stt import __all__ as _stt_all  # noqa: E402
from scapy_geneve.layers.l2tpv3 import *  # noqa: F401,F403,E402
from scapy_geneve.layers.l2tpv3 import __all__ as _l2tpv3_all  # noqa: E402

__all__ += list(_vxlan_all) + list(_nvgre_all) + list(_stt_all) + list(_l2tpv3_all)
