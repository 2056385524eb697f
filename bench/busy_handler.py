"""The short task of bench_busy_node.py: read one lake file and one secret."""

import sys


def read_file_and_secret(ctx, path, secret):
    data = ctx.lake.read_bytes(path)
    value = ctx.secrets[secret]
    return {"bytes": len(data), "secret_chars": len(value),
            "azure_identity_imported": "azure.identity" in sys.modules}
