"""Replay real Azure traffic (recorded by the SDK's own test suites) against the emulators.

Every interaction's status and error code must match the recording. Names get a per-replay
suffix; ETags, continuation tokens, secret versions and ``$skiptoken`` values the real
service returned are mapped to the ones the emulator returned earlier in the same replay;
``If-Modified-Since`` style dates become the emulator's Last-Modified of the same path when
the recording returned that date earlier, else they are shifted by the recording's age. See
``tests/data/recordings/README.md``.

Accepted differences, each documented by the recording itself:
- ``poll``: a delete poller's early read answered 404 while Azure was still deleting; the
  emulator deletes at once and may answer 200.
- storage version 2020-02-10 answered a failed ``If-None-Match`` flush with 304; 2021-08-06
  and later (every SDK we run) answer 412, and so does the emulator.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest

RECORDINGS = sorted((Path(__file__).parent / "data" / "recordings").glob("*.json"))
_CONTAINER_MISSING = ("ContainerNotFound", "FilesystemNotFound")


def _accepted(interaction: Dict[str, Any], status: int) -> bool:
    expect = interaction["expect"]
    if interaction.get("poll") and status == 200:
        return True
    old_flush = (expect["status"] == 304 and interaction["method"] == "PATCH"
                 and interaction["headers"].get("x-ms-version", "") < "2021-08-06")
    return old_flush and status == 412


class Replay:
    """One recording's replay: connections, tokens and the recorded->emulator mappings."""

    def __init__(self, emulators: Any, recording: Dict[str, Any]) -> None:
        self.emulators = emulators
        self.recording = recording
        self.suffix = uuid.uuid4().hex[:6]
        self.values: Dict[str, str] = {}
        self.connections: Dict[str, http.client.HTTPSConnection] = {}
        self.tokens: Dict[str, str] = {}

    # -- names, tokens, connections ------------------------------------------------------

    def name(self, recorded: str) -> str:
        return "%s-%s" % (recorded, self.suffix)

    def token(self, resource: str) -> str:
        if resource not in self.tokens:
            host = urlsplit(self.emulators.identity_url).netloc
            conn = http.client.HTTPConnection(host, timeout=10)
            query = urlencode({"api-version": "2018-02-01", "resource": resource,
                               "client_id": self.emulators.client_id})
            conn.request("GET", "/metadata/identity/oauth2/token?" + query,
                         headers={"Metadata": "true"})
            self.tokens[resource] = json.loads(conn.getresponse().read())["access_token"]
            conn.close()
        return self.tokens[resource]

    def connection(self, base_url: str) -> http.client.HTTPSConnection:
        if base_url not in self.connections:
            from worker.emulators.tls import client_context

            netloc = urlsplit(base_url).netloc
            self.connections[base_url] = http.client.HTTPSConnection(
                netloc, context=client_context(self.emulators.ca_path), timeout=30)
        return self.connections[base_url]

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()

    # -- file systems ------------------------------------------------------------------------

    def precreate_filesystems(self) -> None:
        """Create each file system the recording uses, unless its first use creates it."""
        seen = set()
        for item in self.recording["interactions"]:
            fs = item["path"].lstrip("/").split("/")[0]
            if fs in seen:
                continue
            seen.add(fs)
            creates = item["method"] == "PUT" and "restype=container" in item["query"] \
                and item["expect"]["status"] == 201 and "comp=" not in item["query"]
            if creates or item["expect"]["error_code"] in _CONTAINER_MISSING:
                continue
            self.emulators.set.lake_app.store.create_filesystem(self.name(fs), {})

    # -- rewriting a request -----------------------------------------------------------------

    def map_value(self, value: str) -> str:
        for recorded, ours in self.values.items():
            value = value.replace(recorded, ours)
        return value

    def path(self, item: Dict[str, Any]) -> str:
        parts = item["path"].lstrip("/").split("/")
        if item["endpoint"] == "vault":
            if len(parts) > 1 and parts[1]:
                parts[1] = self.name(parts[1])
            if len(parts) > 2 and parts[2]:
                parts[2] = self.values.get(parts[2], parts[2])
            return "/" + "/".join(parts)
        parts[0] = self.name(parts[0])
        return "/%s/%s" % (self.emulators.set.config.account, "/".join(parts))

    def query(self, item: Dict[str, Any]) -> str:
        pairs = [(k, self.values.get(v, v)) for k, v in
                 parse_qsl(item["query"], keep_blank_values=True)]
        return urlencode(pairs, safe="$", quote_via=quote)

    def headers(self, item: Dict[str, Any]) -> Dict[str, str]:
        headers = {}
        for key, value in item["headers"].items():
            if key.lower() == "content-length":
                continue
            if key.lower() == "x-ms-rename-source":
                fs, _, rest = value.lstrip("/").partition("/")
                value = "/%s/%s" % (self.name(fs), rest)
            elif key.lower().endswith("-since") and value not in self.values:
                value = self.shift(value, item.get("recorded_at") or value)
            headers[key] = self.map_value(value)
        return headers

    @staticmethod
    def shift(value: str, recorded_at: str) -> str:
        age = time.time() - email.utils.parsedate_to_datetime(recorded_at).timestamp()
        shifted = email.utils.parsedate_to_datetime(value).timestamp() + age
        return email.utils.formatdate(shifted, usegmt=True)

    # -- sending and learning ----------------------------------------------------------------

    def send(self, item: Dict[str, Any]) -> Tuple[int, Optional[str], Dict[str, str], bytes]:
        vault = item["endpoint"] == "vault"
        base = self.emulators.vault_url if vault else self.emulators.account_url
        headers = self.headers(item)
        if not item.get("challenge"):
            resource = "https://vault.azure.net" if vault else "https://storage.azure.com"
            headers["Authorization"] = "Bearer " + self.token(resource)
        body = base64.b64decode(item["body_b64"]) if item.get("body_b64") else b""
        target = self.path(item) + ("?" + self.query(item) if item["query"] else "")
        conn = self.connection(base)
        conn.request(item["method"], target, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
        return response.status, self.error_code(got, data), got, data

    @staticmethod
    def error_code(headers: Dict[str, str], data: bytes) -> Optional[str]:
        if "x-ms-error-code" in headers:
            return headers["x-ms-error-code"]
        if data[:1] == b"{":
            error = json.loads(data).get("error")
            return error.get("code") if isinstance(error, dict) else None
        return None

    def learn(self, item: Dict[str, Any], headers: Dict[str, str], data: bytes) -> None:
        """Map the recorded ETag, continuation, version and skiptoken to ours."""
        expect = {k.lower(): v for k, v in item["expect"]["headers"].items()}
        for key in ("etag", "x-ms-continuation", "last-modified"):
            if expect.get(key) and headers.get(key):
                self.values[expect[key]] = headers[key]
                self.values[expect[key].strip('"')] = headers[key].strip('"')
        recorded = item["expect"].get("body_json")
        if item["endpoint"] != "vault" or not isinstance(recorded, dict) or not data:
            return
        ours = json.loads(data)
        if recorded.get("id") and ours.get("id"):
            self.values[recorded["id"].rsplit("/", 1)[-1]] = ours["id"].rsplit("/", 1)[-1]
        if recorded.get("nextLink") and ours.get("nextLink"):
            self.values[_skiptoken(recorded["nextLink"])] = _skiptoken(ours["nextLink"])


def _skiptoken(link: str) -> str:
    return dict(parse_qsl(urlsplit(link).query))["$skiptoken"]


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_replay(emulators, path):
    recording = json.loads(path.read_text())
    replay = Replay(emulators, recording)
    replay.precreate_filesystems()
    mismatches = []
    try:
        for index, item in enumerate(recording["interactions"]):
            status, code, headers, data = replay.send(item)
            replay.learn(item, headers, data)
            expect = item["expect"]
            if (status, code if expect["error_code"] else None) == (
                    expect["status"], expect["error_code"]) or _accepted(item, status):
                continue
            mismatches.append("#%d %s %s?%s: got %s %s, recorded %s %s" % (
                index, item["method"], unquote(item["path"]), item["query"], status, code,
                expect["status"], expect["error_code"]))
    finally:
        replay.close()
    assert not mismatches, "\n".join(mismatches)
