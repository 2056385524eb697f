"""The hand-written script ``bench_exec.py`` compares ``exec`` with: what a user writes today
to run a program over lake files with the plain Azure SDK, one file at a time.

    python bench/sdk_loop.py ACCOUNT_URL FILESYSTEM IN_FOLDER SUFFIX OUT_FOLDER OUT_EXT \\
        -- PROGRAM ARGS...        # {input} and {output} in ARGS

For each file of IN_FOLDER ending in SUFFIX: download it (``download_file().readinto``),
run the program (``subprocess.run``), upload the output (``upload_data``). The managed
identity's client id comes from AZURE_CLIENT_ID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv) -> int:
    from azure.identity import ManagedIdentityCredential
    from azure.storage.filedatalake import DataLakeServiceClient

    account_url, filesystem, in_folder, suffix, out_folder, out_ext = argv[:6]
    template = argv[argv.index("--") + 1:]
    credential = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
    fs = DataLakeServiceClient(account_url, credential=credential).get_file_system_client(
        filesystem)
    work = Path(tempfile.mkdtemp(prefix="sdk-loop-"))
    (work / "out").mkdir()
    for entry in fs.get_paths(in_folder, recursive=False):
        if entry.is_directory or not entry.name.endswith(suffix):
            continue
        name = entry.name.rsplit("/", 1)[-1]
        local, output = work / name, work / "out" / (name[: -len(suffix)] + out_ext)
        with open(local, "wb") as f:
            fs.get_file_client(entry.name).download_file().readinto(f)
        argv_ = [a.replace("{input}", str(local)).replace("{output}", str(output))
                 for a in template]
        subprocess.run(argv_, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(output, "rb") as f:
            fs.get_file_client(f"{out_folder}/{output.name}").upload_data(f, overwrite=True)
        local.unlink()
        output.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
