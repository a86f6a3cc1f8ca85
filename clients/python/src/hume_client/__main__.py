"""``python -m hume_client``: the command line (see :mod:`hume_client.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
