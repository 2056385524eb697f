import does_not_exist_anywhere_xyz  # noqa: F401


def handler(ctx):
    return None
