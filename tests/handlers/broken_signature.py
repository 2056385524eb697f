def positional_only_after_ctx(ctx, a, /):
    return a
