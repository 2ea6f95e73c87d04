"""GSO/TSO segmentation and GRO coalescing, byte-exact with Linux.

Works on bytes through the wire decoder; the Scapy wrappers (``segment``,
``coalesce``) are thin layers over the bytes paths.
"""
