"""A short task of a busy node: read one lake file and one secret (tests/test_identity.py)."""

import sys


def read_file_and_secret(ctx, path, secret):
    data = ctx.lake.read_bytes(path)
    value = ctx.secrets[secret]
    return {"bytes": len(data), "secret_chars": len(value),
            "azure_identity_imported": "azure.identity" in sys.modules}
