"""``python -m scapy_geneve`` runs the CLI."""

import sys

from scapy_geneve.cli import main

sys.exit(main())
