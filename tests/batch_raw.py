"""Raw requests to the local Batch service, signed by the installed azure-batch's own
Shared Key code (15.x's pipeline policy through ``send_request``, 14.x's requests auth
through its signed session): bodies no SDK model would send, answers read as JSON."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple

API_VERSION = "2025-06-01"
API_VERSION_14 = "2024-02-01.19.0"


def sdk_major() -> int:
    import azure.batch

    return int(str(getattr(azure.batch, "__version__", None) or _version()).split(".")[0])


def _version() -> str:
    from azure.batch import _version as module

    return module.VERSION


class Raw:
    """``send(method, path, body, params, headers) -> (status, json or None, headers)``."""

    def __init__(self, handle: Any, key: Optional[str] = None) -> None:
        self.handle = handle
        self.key = key or handle.key
        self.major = sdk_major()
        if self.major >= 15:
            from azure.batch import BatchClient
            from azure.core.credentials import AzureNamedKeyCredential

            self.client = BatchClient(handle.endpoint,
                                      AzureNamedKeyCredential(handle.account, self.key),
                                      connection_verify=handle.ca_path, retry_total=0)
        else:
            from azure.batch import batch_auth

            self.session = batch_auth.SharedKeyCredentials(handle.account,
                                                           self.key).signed_session()

    @property
    def version(self) -> str:
        return API_VERSION if self.major >= 15 else API_VERSION_14

    def send(self, method: str, path: str, body: Any = None,
             params: Optional[Dict[str, str]] = None, headers: Optional[Dict[str, str]] = None,
             version: Optional[str] = "default", raw_body: Optional[bytes] = None,
             ) -> Tuple[int, Any, Dict[str, str]]:
        params = dict(params or {})
        if version == "default":
            params["api-version"] = self.version
        elif version is not None:
            params["api-version"] = version
        headers = dict(headers or {})
        data = raw_body if raw_body is not None else (
            json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers.setdefault("Content-Type", "application/json; odata=minimalmetadata")
        if self.major >= 15:
            from azure.core.exceptions import HttpResponseError
            from azure.core.rest import HttpRequest

            request = HttpRequest(method, path, params=params, headers=headers, content=data)
            try:  # streamed: the pipeline decodes nothing (a file is not JSON)
                response = self.client.send_request(request, stream=True)
            except HttpResponseError as e:  # 15.x raises even here (its error policy)
                response = e.response
            response.read()
            status, text, answer = response.status_code, response.text(), response.headers
        else:
            response = self.session.request(method, self.handle.endpoint + path, params=params,
                                            data=data, headers=headers,
                                            verify=self.handle.ca_path)
            status, text, answer = response.status_code, response.text, response.headers
        try:
            document = json.loads(text) if text else None
        except ValueError:
            document = text
        return status, document, {k.lower(): v for k, v in answer.items()}


def error_of(document: Dict[str, Any]) -> Tuple[str, Dict[str, str]]:
    """(code, values as a dict) of a Batch error body."""
    return document["code"], {v["key"]: v["value"] for v in document.get("values", [])}
