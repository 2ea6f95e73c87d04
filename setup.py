"""The compiled parts: the capture readers' record walks (scapy_geneve/capture/_walk.c)
and the vectorised batch's stages in one pass (scapy_geneve/capture/_batch.c).

Optional: where no C compiler (or no Python headers) is found, the build goes on
without them and the same walks and stages run in Python (capture/accel.py) and
numpy (capture/scan_batch.py), with the same results, slower.  Everything else is
in setup.cfg.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "scapy_geneve.capture._walk",
            sources=["scapy_geneve/capture/_walk.c"],
            optional=True,
        ),
        Extension(
            "scapy_geneve.capture._batch",
            sources=["scapy_geneve/capture/_batch.c"],
            optional=True,
        ),
    ]
)
