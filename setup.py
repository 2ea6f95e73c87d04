"""The one compiled part: the capture readers' record walks (scapy_geneve/capture/_walk.c).

Optional: where no C compiler (or no Python headers) is found, the build goes on
without it and the readers use the same walks in Python (scapy_geneve/capture/accel.py),
with the same results, slower.  Everything else is in setup.cfg.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scapy_geneve.capture._walk",
            sources=["scapy_geneve/capture/_walk.c"],
            optional=True,
        )
    ]
)
