"""A handler module that imports nothing: what is loaded when it runs is the harness's."""

import sys


def start_up_modules_loaded(ctx):
    """Which standard modules the harness imported before the handler that it does not
    need to (each costs every task's start-up; bench/bench_harness.py)."""
    avoidable = ("typing", "dataclasses", "hashlib", "signal", "asyncio", "subprocess")
    return sorted(m for m in avoidable if m in sys.modules)
