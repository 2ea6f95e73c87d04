"""Captures at any size: pcap/pcapng reading and writing, scanning, stats and
filtering, without Scapy (numpy for the vectorised paths)."""
