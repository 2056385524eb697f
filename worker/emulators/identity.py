"""The managed identity emulator: the IMDS token endpoint azure-identity talks to, and the
App Service one other clients use.

``GET /metadata/identity/oauth2/token?api-version=...&resource=R&client_id=C`` with the
header ``Metadata: true`` returns a signed token for audience R, for a configured identity
only. azure-identity reaches it through ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (plain http,
as IMDS itself is). An unknown identity gets IMDS's own 400 ``Identity not found``; never
a 404, which azure-identity would retry five times.

The App Service protocol (``GET /msi/token?api-version=2019-08-01&resource=R`` with the
header ``X-IDENTITY-HEADER`` equal to the secret the emulators hand out as
``IDENTITY_HEADER``) gives the same tokens; clients find it through ``IDENTITY_ENDPOINT``
(``http://127.0.0.1:PORT/msi/token``), and its errors are App Service's
``{"statusCode": ..., "message": ...}``.

Operation names: token, unknown.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any, Dict, Optional

from .config import EmulatorConfig
from .server import Request, Response
from .tokens import TokenIssuer, normalize_audience

TOKEN_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"
OPERATIONS = ("token", "unknown")


class IdentityApp:
    """IMDS: issues tokens for configured identities."""

    service = "identity"

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer,
                 identity_header: str = "") -> None:
        self.config = config
        self.issuer = issuer
        self.identity_header = identity_header  # App Service's X-IDENTITY-HEADER secret

    def operation(self, request: Request) -> str:
        path = request.raw_path.rstrip("/")
        return "token" if path in (TOKEN_PATH, APP_SERVICE_PATH) else "unknown"

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return _json(status, {"error": code, "error_description": message})

    def handle(self, request: Request, operation: str) -> Response:
        if operation == "unknown" or request.method != "GET":
            return _json(404, {"error": "not_found", "error_description": "Not found."})
        if request.raw_path.rstrip("/") == APP_SERVICE_PATH:
            return self._app_service(request)
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

    def _app_service(self, request: Request) -> Response:
        """App Service's token protocol (2019-08-01): the same tokens, its own errors."""
        def refuse(status: int, message: str) -> Response:
            return _json(status, {"statusCode": status, "message": message,
                                  "correlationId": str(uuid.uuid4())})

        secret = request.header("X-IDENTITY-HEADER") or ""
        if not self.identity_header or not hmac.compare_digest(secret, self.identity_header):
            return refuse(401, "The X-IDENTITY-HEADER header is missing or does not match "
                               "IDENTITY_HEADER.")
        resource = request.query.get("resource")
        if not resource:
            return refuse(400, "Required query variable 'resource' is missing.")
        identity = self.config.identity(self._client_id(request.query))
        if identity is None:
            return refuse(400, "Unable to load the proper Managed Identity.")
        token = self._token(identity.client_id, resource)
        return _json(200, {k: token[k] for k in ("access_token", "expires_on", "resource",
                                                 "token_type", "client_id")})

    @staticmethod
    def _client_id(query: Dict[str, str]) -> Optional[str]:
        # object_id and msi_res_id (mi_res_id for App Service) name an identity too; here
        # they are matched as client ids.
        for key in ("client_id", "object_id", "msi_res_id", "mi_res_id"):
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
