"""The files ``python -m worker init DIR`` writes: a handler project that runs and tests at once.

A handler using ``ctx.lake``, ``ctx.secrets`` and ``ctx.sql``; one day of sample orders and a
local secrets file for the emulators; tests with the emulator fixtures and ``run_handler``;
the project's requirements; a README of four commands. ``{name}`` is the project's folder
name, filled in by :func:`files`; everything else is the text as written.
"""

from __future__ import annotations

from typing import Dict

HANDLER = '''"""Orders of one day, summed per region with DuckDB, written to the lake and signed.

Run it locally against the emulators, or on Batch (see README.md):

    python -m worker run handlers.orders:summarize --param date=2024-01-31
"""

from __future__ import annotations

import hashlib
import hmac
import json

from worker import PermanentError

QUERY = """
    select region, count(*) as orders, round(sum(amount), 2) as total
    from orders group by region order by region
"""


def summarize(ctx, date):
    """``raw/orders/<date>.csv`` -> ``curated/orders/<date>.parquet`` and ``.json``
    (with its HMAC signature beside it, ``.json.sig``)."""
    source = f"raw/orders/{date}.csv"
    if not ctx.lake.exists(source):
        raise PermanentError(f"no orders for {date}: {source} is not in {ctx.lake.url}")
    totals = ctx.sql(QUERY, orders=ctx.lake.dataset(source))
    rows = [dict(zip(("region", "orders", "total"), row)) for row in totals.fetchall()]
    ctx.log.info("%s: %d regions", source, len(rows))
    ctx.lake.write_table(totals, f"curated/orders/{date}.parquet")
    body = json.dumps(rows, indent=2) + "\\n"
    key = ctx.secrets["signing-key"].encode()
    ctx.lake.write_text(f"curated/orders/{date}.json", body)
    signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    ctx.lake.write_text(f"curated/orders/{date}.json.sig", signature + "\\n")
    return {"regions": len(rows), "orders": sum(row["orders"] for row in rows)}
'''

TEST = '''"""Tests of handlers.orders against the emulated Data Lake and Key Vault.

The fixtures (emulators, emulator_filesystem, emulator_environ) come with batch-worker's
pytest plugin; each test starts from an empty file system and no secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from worker.testing import run_handler

SAMPLE_LAKE = Path(__file__).resolve().parent.parent / "data" / "lake"


def test_summarize_writes_the_totals_and_their_signature(
        emulators, emulator_filesystem, emulator_environ):
    emulators.load_directory(emulator_filesystem, str(SAMPLE_LAKE))
    emulators.seed_secret("signing-key", "test-key")

    result = run_handler("handlers.orders:summarize", {"date": "2024-01-31"})

    assert result.exit_code == 0, result.error
    assert result.return_value == {"regions": 3, "orders": 6}
    body = emulators.read_file(emulator_filesystem, "curated/orders/2024-01-31.json")
    assert json.loads(body)[0] == {"region": "apac", "orders": 1, "total": 42.0}
    sig = emulators.read_file(emulator_filesystem, "curated/orders/2024-01-31.json.sig")
    expected = hmac.new(b"test-key", body, hashlib.sha256).hexdigest()
    assert sig.decode().strip() == expected
    assert "curated/orders/2024-01-31.parquet" in [o["path"] for o in result.outputs]


def test_a_missing_day_is_bad_input_and_writes_nothing(
        emulators, emulator_filesystem, emulator_environ):
    result = run_handler("handlers.orders:summarize", {"date": "1999-12-31"})

    assert result.exit_code == 4  # PermanentError: Batch should not retry it
    assert "no orders for 1999-12-31" in result.error["message"]
    assert result.outputs == []
'''

ORDERS_CSV = """order_id,region,amount
1001,eu,120.50
1002,us,80.00
1003,eu,19.50
1004,apac,42.00
1005,us,15.25
1006,eu,60.00
"""

SECRETS = '{"signing-key": "local-key-not-a-real-secret"}\n'

REQUIREMENTS = """\
# What the handlers need beyond batch-worker (whose own dependencies are already there),
# pinned with ==, e.g. tabulate==0.9.0. `python -m worker package` puts them on the nodes.
"""

PYTEST_INI = """[pytest]
# The project folder on sys.path, so that tests import `handlers` from any working folder.
pythonpath = .
testpaths = tests
"""

WORKERIGNORE = """\
# What `python -m worker package` leaves out (gitignore syntax): local data, local secrets,
# tests, the emulators' environment, the deploy documents `spec` writes, local runs' records,
# local-batch's node and earlier packages stay here.
data/
secrets.json
tests/
pytest.ini
.emulators.env
*.env
specs/
.worker/
result.json
*.zip
"""

GITIGNORE = """\
__pycache__/
.pytest_cache/
.emulators.env
*.env
specs/
.worker/
result.json
*.zip
"""

README = """# {name}

A batch-worker handler project: `handlers/orders.py` sums one day of orders per region
with DuckDB, reads a signing key from Key Vault, and writes the totals to the Data Lake
(committed only when the handler succeeds). Made by `python -m worker init`.

The commands below run in the environment batch-worker's README sets up
(`bash bootstrap/devenv.sh` in the batch-worker checkout, then activate it).

**1. Run it locally**, against the loopback emulators of Data Lake, Key Vault and the
managed identity. In one terminal (it prints one line per request; Ctrl-C stops it):

```bash
python -m worker emulate --env-file .emulators.env --load-dir data/lake --load-secrets secrets.json
```

In another (in this folder, with the environment activated there too), once the first
has printed its environment:

```bash
set -a; . ./.emulators.env; set +a
python -m worker run handlers.orders:summarize --param date=2024-01-31
python -m worker lake ls curated -r
```

**2. Test it** (the tests start their own emulators; none need be running):

```bash
python -m pytest
```

**3. Package it** for Batch (the start task, the worker, every wheel this project needs,
and `handlers/`; `data/`, `tests/` and `secrets.json` stay out, see `.workerignore`):

```bash
python -m worker package . --out {name}.zip
```

**4. Deploy it**: `batch.toml` says how (one task per day; put your account, identity,
lake and vault in it). Write the pool, job and task documents, run the job on a local
stand-in for a Batch node first, then deploy the same documents with `az`:

```bash
python -m worker spec all --package {name}.zip --out specs/
python -m worker local-batch --package {name}.zip --specs specs/ --emulators \
    --lake-dir data/lake --secrets secrets.json
```

The steps on Azure are in batch-worker's README, "Deploy: from a handler folder to a
running pool" (`spec all` prints the `az` commands).

Add dependencies to `requirements.txt` (pinned), and install them into your environment
with `bash <batch-worker>/bootstrap/devenv.sh -r requirements.txt`.
"""


#: The ARM id of the pool's user-assigned identity, for the user to replace.
IDENTITY = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/batch-worker")

BATCH_TOML = """\
# What `python -m worker spec` deploys for this project (batch-worker's README, "Deploy"):
# one task per day, each running handlers.orders:summarize for its date. The package's
# manifest (--package {name}.zip) gives the application id and version. Replace the
# account, identity, client id, lake and vault with yours, or override any key with
# --set SECTION.KEY=VALUE (e.g. --set 'tasks.items={{range = [2024-02-01, 2024-02-29]}}').

[pool]
id = "{name}"
account = "mybatchaccount"
vm_size = "Standard_D2a_v4"
nodes = 1
task_slots = 2
identity = "{identity}"
client_id = "00000000-0000-0000-0000-000000000001"

[job]
id = "{name}-daily"
lake_url = "abfss://data@mydatalake.dfs.core.windows.net/"
vault_url = "https://my-vault.vault.azure.net"

[tasks]
items = {{ range = [2024-01-31, 2024-01-31] }}   # the days: one task each
command = ["run", "handlers.orders:summarize", "--param", "date={{item}}"]
timeout = 600                                   # seconds; maxWallClockTime adds grace + margin
retries = 2
"""


def files(name: str) -> Dict[str, str]:
    """Path (relative to the project folder) -> content, for a project named ``name``."""
    return {
        "README.md": README.format(name=name),
        "batch.toml": BATCH_TOML.format(name=name, identity=IDENTITY),
        "requirements.txt": REQUIREMENTS,
        "pytest.ini": PYTEST_INI,
        ".workerignore": WORKERIGNORE,
        ".gitignore": GITIGNORE,
        "secrets.json": SECRETS,
        "data/lake/raw/orders/2024-01-31.csv": ORDERS_CSV,
        "handlers/__init__.py": "",
        "handlers/orders.py": HANDLER,
        "tests/test_orders.py": TEST,
    }
