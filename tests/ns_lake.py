"""The raw Data Lake SDK, run as a script inside a test node's network namespace (where the
emulators listen), with the environment ``python -m worker emulate`` printed:

    python ns_lake.py put PATH < data          upload a file to WORKER_LAKE_URL's file system
    python ns_lake.py get PATH...              print {path: text} of those files as JSON
    python ns_lake.py ls                       print every path of the file system as JSON

Plain DataLakeServiceClient calls with a ManagedIdentityCredential (the emulators' IMDS), no
worker code: what a task wrote is checked by something other than the worker itself.
"""

from __future__ import annotations

import json
import os
import sys

from azure.identity import ManagedIdentityCredential
from azure.storage.filedatalake import DataLakeServiceClient


def file_system():
    account_url, name = os.environ["WORKER_LAKE_URL"].rsplit("/", 1)
    credential = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
    service = DataLakeServiceClient(account_url, credential=credential,
                                    connection_verify=os.environ["REQUESTS_CA_BUNDLE"])
    return service.get_file_system_client(name)


def main(argv):
    fs = file_system()
    if argv[0] == "put":
        fs.get_file_client(argv[1]).upload_data(sys.stdin.buffer.read(), overwrite=True)
    elif argv[0] == "get":
        found = {path: fs.get_file_client(path).download_file().readall().decode("latin-1")
                 for path in argv[1:]}
        json.dump(found, sys.stdout)
    elif argv[0] == "ls":
        json.dump(sorted(p.name for p in fs.get_paths(recursive=True)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
