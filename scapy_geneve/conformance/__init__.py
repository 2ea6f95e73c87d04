"""The RFC linter, the conformance vectors, the harness and its endpoints.

``lint`` and ``vectors`` are light; ``harness`` and ``endpoints`` (namespaces,
Open vSwitch, raw sockets) are imported only when used.
"""
