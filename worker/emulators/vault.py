"""The Key Vault secrets emulator: challenge flow, bearer tokens, the real JSON shapes.

The SDK's first request to a vault carries no token: it is answered 401 with
``WWW-Authenticate: Bearer authorization="...", resource="https://vault.azure.net"``, and
the SDK re-sends it with a token for that resource. Secret ids are absolute URLs
(``https://HOST/secrets/NAME/VERSION``), built from the Host the client used. Lists page
with an absolute ``nextLink`` carrying ``$skiptoken``.

Operation names (for faults and counters): set_secret, get_secret, update_secret,
delete_secret, list_secrets, list_versions, get_deleted_secret, list_deleted_secrets,
purge_deleted_secret, recover_deleted_secret, unknown.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlencode

from .config import EmulatorConfig, Identity
from .server import Request, Response
from .tokens import TENANT_ID, TokenError, TokenIssuer, bearer_token
from .vault_store import SecretStore, VaultError

AUDIENCE = "https://vault.azure.net"
OPERATIONS = ("set_secret", "get_secret", "update_secret", "delete_secret", "list_secrets",
              "list_versions", "get_deleted_secret", "list_deleted_secrets",
              "purge_deleted_secret", "recover_deleted_secret", "unknown")
_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_MAX_PAGE = 25
_READ_OPS = ("get_secret", "list_versions", "get_deleted_secret")
_LIST_OPS = ("list_secrets", "list_deleted_secrets")


def _route(method: str, parts: List[str]) -> str:
    """The operation for ``method`` on the path segments after the host."""
    collection, rest = (parts[0], parts[1:]) if parts else ("", [])
    if collection == "secrets":
        if not rest:
            return "list_secrets" if method == "GET" else "unknown"
        if len(rest) == 1 or (len(rest) == 2 and rest[1] == ""):
            return {"PUT": "set_secret", "GET": "get_secret", "PATCH": "update_secret",
                    "DELETE": "delete_secret"}.get(method, "unknown")
        if rest[1] == "versions" and method == "GET":
            return "list_versions"
        return {"GET": "get_secret", "PATCH": "update_secret"}.get(method, "unknown")
    if collection == "deletedsecrets":
        if not rest:
            return "list_deleted_secrets" if method == "GET" else "unknown"
        if len(rest) == 2 and rest[1] == "recover" and method == "POST":
            return "recover_deleted_secret"
        return {"GET": "get_deleted_secret", "DELETE": "purge_deleted_secret"}.get(
            method, "unknown")
    return "unknown"


def _segments(request: Request) -> List[str]:
    return [unquote(p) for p in request.raw_path.lstrip("/").split("/")] if \
        request.raw_path.strip("/") else []


class VaultApp:
    """The vault service: challenge, authorization, routing and bundles."""

    service = "vault"

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer,
                 store: Optional[SecretStore] = None) -> None:
        self.config = config
        self.issuer = issuer
        self.store = store or SecretStore()

    def operation(self, request: Request) -> str:
        return _route(request.method, _segments(request))

    def error(self, request: Request, status: int, code: str, message: str,
              inner: Optional[str] = None) -> Response:
        err: Dict[str, Any] = {"code": code, "message": message}
        if inner:
            err["innererror"] = {"code": inner}
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer authorization="https://login.'
                            'microsoftonline.com/%s", resource="%s"' % (TENANT_ID, AUDIENCE)))
        return Response(status, headers, json.dumps({"error": err}).encode())

    def handle(self, request: Request, operation: str) -> Response:
        try:
            identity = self._authenticate(request)
            parts = _segments(request)
            name = parts[1] if len(parts) > 1 else ""
            self._authorize(identity, operation, name)
            if operation == "unknown":
                raise VaultError(400, "BadParameter", "The request is not supported.")
            if name and not _NAME.match(name):
                raise VaultError(400, "BadParameter",
                                 "The request URI contains an invalid name: %s" % name)
            body = getattr(self, "_op_" + operation)(request, parts)
        except VaultError as e:
            return self.error(request, e.status, e.code, e.message, e.inner)
        return Response(200 if body is not None else 204,
                        [("Content-Type", "application/json; charset=utf-8")],
                        json.dumps(body).encode() if body is not None else b"")

    # -- authorization -------------------------------------------------------------------

    def _authenticate(self, request: Request) -> Identity:
        try:
            claims = self.issuer.verify(bearer_token(request.header("Authorization")), AUDIENCE)
        except TokenError as e:
            if e.reason == "missing":
                raise VaultError(401, "Unauthorized",
                                 "AKV10000: Request is missing a Bearer or PoP token.") from e
            raise VaultError(401, "Unauthorized", "AKV10022: %s" % e) from e
        identity = self.config.identity(claims.client_id)
        if identity is None:
            raise _forbidden(claims.client_id, "unknown")
        return identity

    @staticmethod
    def _authorize(identity: Identity, operation: str, name: str) -> None:
        if operation in _LIST_OPS or operation == "unknown":
            allowed = bool(identity.secret_get or identity.secret_set)
        else:
            allowed = identity.may_secret(name, write=operation not in _READ_OPS)
        if not allowed:
            raise _forbidden(identity.client_id, operation)

    # -- operations ------------------------------------------------------------------------

    def _op_set_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        payload = _json_body(request)
        if "value" not in payload:
            raise VaultError(400, "BadParameter", "Property value is required.")
        item = self.store.set(parts[1], str(payload["value"]), payload.get("contentType"),
                              payload.get("tags"), payload.get("attributes"))
        return self._bundle(request, parts[1], item)

    def _op_get_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        item = self.store.get(parts[1], parts[2] if len(parts) > 2 else None)
        if not item.get("enabled", True):
            raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled "
                             "secret.", "SecretDisabled")
        return self._bundle(request, parts[1], item)

    def _op_update_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        item = self.store.update(parts[1], parts[2] if len(parts) > 2 else None,
                                 _json_body(request))
        return self._bundle(request, parts[1], item, with_value=False)

    def _op_delete_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        return self._deleted(request, parts[1], self.store.delete(parts[1]))

    def _op_get_deleted_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        return self._deleted(request, parts[1], self.store.get_deleted(parts[1]))

    def _op_purge_deleted_secret(self, request: Request, parts: List[str]) -> None:
        self.store.purge(parts[1])

    def _op_recover_deleted_secret(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        return self._bundle(request, parts[1], self.store.recover(parts[1]), with_value=False)

    def _op_list_secrets(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        items = [(n, self._item(request, n, v, versioned=False)) for n, v in self.store.names()]
        return self._page(request, "/secrets", items)

    def _op_list_versions(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        items = [(v["version"], self._item(request, parts[1], v, versioned=True))
                 for v in self.store.versions(parts[1])]
        return self._page(request, "/secrets/%s/versions" % parts[1], items, sort=True)

    def _op_list_deleted_secrets(self, request: Request, parts: List[str]) -> Dict[str, Any]:
        items = []
        for name, view in self.store.deleted_names():
            item = self._item(request, name, view, versioned=False)
            item.update(self._deleted_fields(request, name, view))
            items.append((name, item))
        return self._page(request, "/deletedsecrets", items)

    # -- shapes ----------------------------------------------------------------------------

    @staticmethod
    def _base(request: Request) -> str:
        return "https://%s" % (request.header("Host") or "127.0.0.1")

    def _bundle(self, request: Request, name: str, item: Dict[str, Any],
                with_value: bool = True) -> Dict[str, Any]:
        bundle = self._item(request, name, item, versioned=True)
        if with_value:
            bundle["value"] = item["value"]
        return bundle

    def _item(self, request: Request, name: str, item: Dict[str, Any],
              versioned: bool) -> Dict[str, Any]:
        secret_id = "%s/secrets/%s" % (self._base(request), name)
        result: Dict[str, Any] = {
            "id": secret_id + ("/" + item["version"] if versioned else ""),
            "attributes": _attributes_json(item)}
        if item.get("contentType") is not None:
            result["contentType"] = item["contentType"]
        if item.get("tags") is not None:
            result["tags"] = item["tags"]
        return result

    def _deleted_fields(self, request: Request, name: str, view: Dict[str, Any]) -> Dict[str, Any]:
        return {"recoveryId": "%s/deletedsecrets/%s" % (self._base(request), name),
                "deletedDate": view["deletedDate"],
                "scheduledPurgeDate": view["scheduledPurgeDate"]}

    def _deleted(self, request: Request, name: str, view: Dict[str, Any]) -> Dict[str, Any]:
        bundle = self._bundle(request, name, view, with_value=False)
        bundle.update(self._deleted_fields(request, name, view))
        return bundle

    def _page(self, request: Request, path: str, items: List[Tuple[str, Dict[str, Any]]],
              sort: bool = False) -> Dict[str, Any]:
        """One page after ``$skiptoken``, with an absolute ``nextLink`` or null."""
        if sort:
            items = sorted(items, key=lambda pair: pair[0])
        limit = _page_size(request.query.get("maxresults"))
        marker = _decode_skiptoken(request.query.get("$skiptoken"))
        if marker is not None:
            items = [pair for pair in items if pair[0] > marker]
        page = items[:limit]
        next_link = None
        if len(items) > limit:
            query = urlencode([("api-version", request.query.get("api-version", "7.5")),
                               ("$skiptoken", _encode_skiptoken(page[-1][0])),
                               ("maxresults", str(limit))], safe="$")
            next_link = "%s%s?%s" % (self._base(request), path, query)
        return {"value": [item for _, item in page], "nextLink": next_link}


def _attributes_json(item: Dict[str, Any]) -> Dict[str, Any]:
    attrs = {"enabled": item.get("enabled", True), "created": item["created"],
             "updated": item["updated"], "recoveryLevel": "Recoverable+Purgeable",
             "recoverableDays": 90}
    for key in ("nbf", "exp"):
        if item.get(key) is not None:
            attrs[key] = item[key]
    return attrs


def _json_body(request: Request) -> Dict[str, Any]:
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError as e:
        raise VaultError(400, "BadParameter", "The request body is not valid JSON.") from e
    if not isinstance(payload, dict):
        raise VaultError(400, "BadParameter", "The request body must be a JSON object.")
    return payload


def _page_size(raw: Optional[str]) -> int:
    if not raw:
        return _MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise VaultError(400, "BadParameter", "maxresults must be between 1 and 25.")
    return int(raw)


def _encode_skiptoken(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode().rstrip("=")


def _decode_skiptoken(token: Optional[str]) -> Optional[str]:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        return None


def _forbidden(client_id: str, operation: str) -> VaultError:
    return VaultError(403, "Forbidden", "Caller is not authorized to perform action on "
                      "resource. Caller: appid=%s; Action: %s" % (client_id, operation),
                      "ForbiddenByRbac")
