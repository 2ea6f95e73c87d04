"""Hypothesis strategies for Geneve headers and options."""

from hypothesis import strategies as st

from scapy_geneve import Geneve, GeneveOption


@st.composite
def options(draw, max_total: int = 252):
    """A list of generic options whose wire size fits in ``max_total`` bytes."""
    out = []
    room = max_total
    for _ in range(draw(st.integers(0, 8))):
        if room < 4:
            break
        size = draw(st.integers(0, min(124, room - 4)))
        data = draw(st.binary(min_size=size, max_size=size))
        out.append(
            GeneveOption(
                classid=draw(st.integers(0, 0xFFFF)),
                type=draw(st.integers(0, 0xFF)),
                reserved=draw(st.integers(0, 7)),
                data=data,
            )
        )
        room -= 4 + (size + 3) // 4 * 4
    return out


@st.composite
def geneve_headers(draw):
    return Geneve(
        oam=draw(st.integers(0, 1)),
        reserved=draw(st.integers(0, 63)),
        proto=draw(st.sampled_from([0x6558, 0x0800, 0x86DD, 0x0806, 0x1234])),
        vni=draw(st.integers(0, (1 << 24) - 1)),
        reserved2=draw(st.integers(0, 255)),
        options=draw(options()),
    )
