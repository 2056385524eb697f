"""The managed identity emulator: the IMDS token endpoint azure-identity talks to.

``GET /metadata/identity/oauth2/token?api-version=...&resource=R&client_id=C`` with the
header ``Metadata: true`` returns a signed token for audience R, for a configured identity
only. azure-identity reaches it through ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (plain http,
as IMDS itself is). An unknown identity gets IMDS's own 400 ``Identity not found``; never
a 404, which azure-identity would retry five times.

Operation names: token, unknown.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Optional

from .config import EmulatorConfig
from .server import Request, Response
from .tokens import TokenIssuer, normalize_audience

TOKEN_PATH = "/metadata/identity/oauth2/token"
OPERATIONS = ("token", "unknown")


class IdentityApp:
    """IMDS: issues tokens for configured identities."""

    service = "identity"

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer) -> None:
        self.config = config
        self.issuer = issuer

    def operation(self, request: Request) -> str:
        return "token" if request.raw_path.rstrip("/") == TOKEN_PATH else "unknown"

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return _json(status, {"error": code, "error_description": message})

    def handle(self, request: Request, operation: str) -> Response:
        if operation == "unknown" or request.method != "GET":
            return _json(404, {"error": "not_found", "error_description": "Not found."})
        if (request.header("Metadata") or "").lower() != "true":
            return self.error(request, 400, "invalid_request",
                              "Required metadata header not specified")
        resource = request.query.get("resource")
        if not resource:
            return self.error(request, 400, "invalid_request",
                              "Required query variable 'resource' is missing")
        client_id = self._client_id(request.query)
        identity = self.config.identity(client_id)
        if identity is None:
            return self.error(request, 400, "invalid_request", "Identity not found")
        return _json(200, self._token(identity.client_id, resource))

    @staticmethod
    def _client_id(query: Dict[str, str]) -> Optional[str]:
        # object_id and msi_res_id name an identity too; here they are matched as client ids.
        for key in ("client_id", "object_id", "msi_res_id"):
            if query.get(key):
                return query[key]
        return None

    def _token(self, client_id: str, resource: str) -> Dict[str, Any]:
        token, expires_on = self.issuer.issue(client_id, resource)
        expires_in = str(expires_on - int(time.time()))
        return {
            "access_token": token, "client_id": client_id, "expires_in": expires_in,
            "expires_on": str(expires_on), "ext_expires_in": expires_in,
            "not_before": str(int(time.time()) - 300),
            "resource": normalize_audience(resource), "token_type": "Bearer",
        }


def _json(status: int, payload: Dict[str, Any]) -> Response:
    return Response(status, [("Content-Type", "application/json; charset=utf-8")],
                    json.dumps(payload).encode())
