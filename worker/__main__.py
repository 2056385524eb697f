"""``python -m worker``: the one place that exits the process."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
