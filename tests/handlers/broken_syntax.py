def handler(ctx:
    return None
