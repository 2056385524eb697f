"""``python -m worker.emulators``: the ``emulate`` command on its own."""

from __future__ import annotations

import argparse
import sys

from .cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.emulators",
                                     description="Loopback Data Lake, Key Vault and IMDS.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
