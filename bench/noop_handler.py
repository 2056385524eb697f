"""The no-op handler the harness-overhead benchmark runs."""


def noop(ctx=None):
    return None
