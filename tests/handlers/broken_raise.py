raise RuntimeError("configuration missing at import time")


def handler(ctx):
    return None
