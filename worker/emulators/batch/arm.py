"""The Batch account's account plane (ARM, ``Microsoft.Batch/batchAccounts``) at an HTTPS
endpoint of its own, for azure-mgmt-batch pointed at it (``base_url``) and for ``az`` with a
custom cloud: the account and its keys; applications; application package versions
(created with a ``storageUrl``, a SAS URL into the emulated Blob endpoint to PUT the zip to,
then activated); pools from the ARM resource ``python -m worker spec pool`` writes (created,
updated, read, listed, deleted, autoscale disabled, resize stopped).

Requests need an Entra token for Azure Resource Manager (``https://management.azure.com/``)
from the emulated identity endpoint; errors are ARM's ``{"error": {"code", "message",
"target"}}``.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote

from ..server import Request, Response
from ..tokens import TokenError, bearer_token
from . import arm_pools
from .applications import Application, Package
from .arm_pools import ArmError
from .roles import arm_action
from .service import BatchService
from .wire import iso

AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
API_VERSIONS = ("2022-10-01", "2023-05-01", "2023-11-01", "2024-02-01", "2024-07-01",
                "2025-06-01")
_ACCOUNT = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
                      r"Microsoft\.Batch/batchAccounts/([^/]+)(/.*)?$", re.IGNORECASE)


class PackageBlobs:
    """Where the account plane's package zips are uploaded (the host gives the emulated Blob
    endpoint's): a SAS URL to PUT a version's zip to, and its bytes once uploaded."""

    def url(self, app: str, version: str) -> Tuple[str, float]:
        raise NotImplementedError

    def read(self, app: str, version: str) -> Optional[bytes]:
        raise NotImplementedError


class ArmCall:
    """One account-plane request, as the operations see it."""

    def __init__(self, service: BatchService, request: Request, blobs: PackageBlobs) -> None:
        self.service = service
        self.request = request
        self.blobs = blobs
        self.prefix = service.arm_prefix()

    def header(self, name: str) -> Optional[str]:
        return self.request.header(name)

    def body(self) -> Dict[str, Any]:
        if not self.request.body.strip():
            return {}
        try:
            document = json.loads(self.request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ArmError(400, "InvalidRequestContent", "The request content is not valid "
                           "JSON: %s" % e) from None
        if not isinstance(document, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON "
                           "object.")
        return document

    def check_etag(self, etag: str) -> None:
        match, none_match = self.header("If-Match"), self.header("If-None-Match")
        if match and match.strip() not in ("*", etag):
            raise ArmError(412, "ConditionNotMet", "The If-Match header %s does not match the "
                           "resource's etag %s." % (match, etag))
        if none_match and none_match.strip() in ("*", etag):
            raise ArmError(412, "ConditionNotMet", "The resource exists (If-None-Match %s)."
                           % none_match)

    def not_found(self, kind: str, name: str) -> ArmError:
        code = {"pools": "PoolNotFound", "applications": "ApplicationNotFound",
                "versions": "ApplicationPackageNotFound"}[kind]
        return ArmError(404, code, "The specified %s %s does not exist in account %s."
                        % (kind[:-1].replace("version", "application package version"), name,
                           self.service.account))


Operation = Callable[[ArmCall, List[str]], Any]
_ROUTES: List[Tuple[str, "re.Pattern", Operation, str]] = []


def _route(pattern: str, kind: str, **verbs: Tuple[Operation, str]) -> None:
    """The operations on one path below the account: ``GET=(operation, "get")`` is
    operation ``KIND.get``; the path's ``{names}`` are its arguments, in order."""
    regex = re.compile("^" + re.sub(r"\{\w+\}", "([^/]+)", pattern) + "$", re.IGNORECASE)
    for method, (operation, name) in verbs.items():
        _ROUTES.append((method, regex, operation, "%s.%s" % (kind, name)))


# -- the account -------------------------------------------------------------------------------

def _account(call: ArmCall, _: List[str]) -> Any:
    settings = call.service.settings
    return {"id": call.prefix, "name": call.service.account,
            "type": "Microsoft.Batch/batchAccounts", "location": settings.location,
            "properties": {
                "accountEndpoint": call.service.url.split("://", 1)[1],
                "provisioningState": "Succeeded", "poolAllocationMode": "BatchService",
                "dedicatedCoreQuota": settings.dedicated_core_quota,
                "lowPriorityCoreQuota": settings.low_priority_core_quota,
                "poolQuota": settings.pool_quota,
                "activeJobAndJobScheduleQuota": 300, "publicNetworkAccess": "Enabled",
                "allowedAuthenticationModes": ["SharedKey", "AAD", "TaskAuthenticationToken"],
            }}


def _keys(call: ArmCall, _: List[str]) -> Any:
    return {"accountName": call.service.account, "primary": call.service.key,
            "secondary": call.service.key}


# -- applications and their versions -----------------------------------------------------------

def _app_json(call: ArmCall, app: Application) -> Dict[str, Any]:
    return {"id": "%s/applications/%s" % (call.prefix, app.id), "name": app.id,
            "type": "Microsoft.Batch/batchAccounts/applications",
            "etag": 'W/"%d"' % app.version_stamp,
            "properties": {"displayName": app.display_name or app.id,
                           "allowUpdates": app.allow_updates,
                           "defaultVersion": app.default_version}}


def _find_app(call: ArmCall, name: str) -> Application:
    app = call.service.apps.get(name)
    if app is None:
        raise call.not_found("applications", name)
    return app


def _put_app(call: ArmCall, args: List[str]) -> Any:
    app = call.service.apps.ensure(args[0])
    _apply_app(call, app, call.body().get("properties") or {})
    return _app_json(call, app)


def _patch_app(call: ArmCall, args: List[str]) -> Any:
    app = _find_app(call, args[0])
    _apply_app(call, app, call.body().get("properties") or {})
    return _app_json(call, app)


def _apply_app(call: ArmCall, app: Application, properties: Dict[str, Any]) -> None:
    unknown = sorted(set(properties) - {"displayName", "allowUpdates", "defaultVersion"})
    if unknown:
        raise ArmError(400, "InvalidRequestContent", "The application property '%s' is not "
                       "one this account knows." % unknown[0], "properties.%s" % unknown[0])
    default = properties.get("defaultVersion")
    if default is not None and app.packages.get(default) is None:
        raise ArmError(409, "ApplicationPackageNotFound", "Version %s of application %s does "
                       "not exist: it cannot be the default." % (default, app.id))
    app.display_name = properties.get("displayName", app.display_name)
    app.allow_updates = bool(properties.get("allowUpdates", app.allow_updates))
    app.default_version = default if default is not None else app.default_version
    app.version_stamp += 1


def _get_app(call: ArmCall, args: List[str]) -> Any:
    return _app_json(call, _find_app(call, args[0]))


def _list_apps(call: ArmCall, _: List[str]) -> Any:
    apps = sorted(call.service.apps.apps.values(), key=lambda a: a.id.lower())
    return {"value": [_app_json(call, a) for a in apps]}


def _delete_app(call: ArmCall, args: List[str]) -> Any:
    app = call.service.apps.get(args[0])
    if app is not None:
        del call.service.apps.apps[app.id.lower()]
    return None


def _version_json(call: ArmCall, app: Application, package: Package) -> Dict[str, Any]:
    properties: Dict[str, Any] = {"state": package.state}
    if package.state == "Active":
        properties.update({"format": package.format,
                           "lastActivationTime": iso(package.activated)})
    url, expiry = call.blobs.url(app.id, package.version)
    properties.update({"storageUrl": url, "storageUrlExpiry": iso(expiry)})
    return {"id": "%s/applications/%s/versions/%s" % (call.prefix, app.id, package.version),
            "name": package.version, "type": "Microsoft.Batch/batchAccounts/applications/"
                                              "versions",
            "etag": 'W/"%d"' % package.version_stamp, "properties": properties}


def _find_version(call: ArmCall, args: List[str]) -> Tuple[Application, Package]:
    app = _find_app(call, args[0])
    package = app.packages.get(args[1])
    if package is None:
        raise call.not_found("versions", "%s %s" % (app.id, args[1]))
    return app, package


def _put_version(call: ArmCall, args: List[str]) -> Any:
    app = call.service.apps.ensure(args[0])
    package = app.packages.get(args[1])
    if package is not None and package.state == "Active" and not app.allow_updates:
        raise ArmError(409, "ApplicationUpdatesNotAllowed", "Application %s does not allow "
                       "updates: version %s is active." % (app.id, args[1]))
    if package is None:
        package = app.packages[args[1]] = Package(args[1])
    return _version_json(call, app, package)


def _get_version(call: ArmCall, args: List[str]) -> Any:
    return _version_json(call, *_find_version(call, args))


def _list_versions(call: ArmCall, args: List[str]) -> Any:
    app = _find_app(call, args[0])
    return {"value": [_version_json(call, app, p) for _, p in sorted(app.packages.items())]}


def _delete_version(call: ArmCall, args: List[str]) -> Any:
    app = call.service.apps.get(args[0])
    if app is not None:
        app.packages.pop(args[1], None)
        if app.default_version == args[1]:
            app.default_version = None
    return None


def _activate(call: ArmCall, args: List[str]) -> Any:
    app, package = _find_version(call, args)
    fmt = str(call.body().get("format") or "")
    if fmt.lower() != "zip":
        raise ArmError(400, "InvalidRequestContent", "The package format must be zip, not %r."
                       % fmt, "format")
    data = call.blobs.read(app.id, package.version)
    if data is None:
        raise ArmError(409, "ApplicationPackageBlobNotFound", "Nothing was uploaded to the "
                       "storageUrl of application %s version %s: PUT the zip there first."
                       % (app.id, package.version))
    with tempfile.NamedTemporaryFile(suffix=".zip") as handle:
        handle.write(data)
        handle.flush()
        if not zipfile.is_zipfile(handle.name):
            raise ArmError(409, "ApplicationPackageInvalidFormat", "What was uploaded for "
                           "application %s version %s is not a zip file."
                           % (app.id, package.version))
        call.service.apps.activate(app, package, Path(handle.name), "zip")
    return _version_json(call, app, package)


# -- pools -------------------------------------------------------------------------------------

def _find_pool(call: ArmCall, name: str) -> Any:
    pool = call.service.pools.get(name.lower())
    if pool is None:
        raise call.not_found("pools", name)
    return pool


def _put_pool(call: ArmCall, args: List[str]) -> Any:
    return arm_pools.create_or_update(call, args[0], call.body())


def _patch_pool(call: ArmCall, args: List[str]) -> Any:
    return arm_pools.patch(call, args[0], call.body())


def _get_pool(call: ArmCall, args: List[str]) -> Any:
    return arm_pools.to_arm(call, _find_pool(call, args[0]))


def _list_pools(call: ArmCall, _: List[str]) -> Any:
    return {"value": arm_pools.listing(call)}


def _delete_pool(call: ArmCall, args: List[str]) -> Any:
    pool = call.service.pools.get(args[0].lower())
    if pool is not None:
        call.service.delete_pool(pool)
    return None


def _disable_autoscale(call: ArmCall, args: List[str]) -> Any:
    pool = _find_pool(call, args[0])
    dedicated, low = pool.counts()
    pool.scaler = None
    pool.set_targets(dedicated, low)
    return arm_pools.to_arm(call, pool)


def _stop_resize(call: ArmCall, args: List[str]) -> Any:
    pool = _find_pool(call, args[0])
    pool.stop_resize()
    return arm_pools.to_arm(call, pool)


A, V = "/applications/{app}", "/applications/{app}/versions/{version}"
_route("", "account", GET=(_account, "get"))
_route("/listKeys", "account", POST=(_keys, "listkeys"))
_route("/applications", "application", GET=(_list_apps, "list"))
_route(A, "application", PUT=(_put_app, "create"), PATCH=(_patch_app, "update"),
       GET=(_get_app, "get"), DELETE=(_delete_app, "delete"))
_route(A + "/versions", "package", GET=(_list_versions, "list"))
_route(V, "package", PUT=(_put_version, "create"), GET=(_get_version, "get"),
       DELETE=(_delete_version, "delete"))
_route(V + "/activate", "package", POST=(_activate, "activate"))
_route("/pools", "pool", GET=(_list_pools, "list"))
_route("/pools/{pool}", "pool", PUT=(_put_pool, "create"), PATCH=(_patch_pool, "update"),
       GET=(_get_pool, "get"), DELETE=(_delete_pool, "delete"))
_route("/pools/{pool}/disableAutoScale", "pool", POST=(_disable_autoscale, "disableautoscale"))
_route("/pools/{pool}/stopResize", "pool", POST=(_stop_resize, "stopresize"))

OPERATIONS = tuple(name for _, _, _, name in _ROUTES) + ("unknown",)


class ArmApp:
    """The app the emulator server runs for the account plane."""

    service = "arm"

    def __init__(self, batch: BatchService, blobs: PackageBlobs) -> None:
        self.batch = batch
        self.blobs = blobs

    def operation(self, request: Request) -> str:
        found = self._match(request)
        return found[1] if found else "unknown"

    def _match(self, request: Request) -> Optional[Tuple[Operation, str, List[str]]]:
        account = _ACCOUNT.match(unquote(request.raw_path))
        if not account:
            return None
        rest = account.group(4) or ""
        for method, regex, operation, name in _ROUTES:
            match = regex.match(rest.rstrip("/") if rest != "/" else "")
            if match and method == request.method:
                return operation, name, list(match.groups())
        return None

    def error(self, request: Request, status: int, code: str, message: str) -> Response:
        return _json(status, {"error": {"code": code, "message": message}})

    def handle(self, request: Request, operation: str) -> Response:
        try:
            return self._handle(request)
        except ArmError as e:
            error: Dict[str, Any] = {"code": e.code, "message": e.message}
            if e.target:
                error["target"] = e.target
            return _json(e.status, {"error": error})

    def _handle(self, request: Request) -> Response:
        caller = self._authenticate(request)
        version = request.query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter", "The api-version query "
                           "parameter (?api-version=) is required for all requests.")
        if version not in API_VERSIONS:
            raise ArmError(400, "InvalidApiVersionParameter", "The api-version '%s' is "
                           "invalid. The supported versions are '%s'."
                           % (version, "','".join(API_VERSIONS)))
        self._check_account(request)
        found = self._match(request)
        if found is None:
            raise ArmError(404 if request.method == "GET" else 405, "InvalidResourceType",
                           "The resource type or operation %s %s is not one the local "
                           "account plane serves (docs/batch-service.md lists them)."
                           % (request.method, request.raw_path))
        operation, name, args = found
        self._authorize(caller, arm_action(name, request.method), request)
        with self.batch.lock:
            document = operation(ArmCall(self.batch, request, self.blobs), args)
        self.batch.wake()
        return _json(200, document) if document is not None else Response(200, [])

    def _authorize(self, caller: str, action: str, request: Request) -> None:
        """ARM's 403 unless the caller holds a role that grants ``action``."""
        if not self.batch.roles.allows(caller, action, False):
            raise ArmError(403, "AuthorizationFailed", "The client '%s' with object id '%s' "
                           "does not have authorization to perform action '%s' over scope "
                           "'%s' or the scope is invalid. If access was recently granted, "
                           "please refresh your credentials."
                           % (caller, caller, action, unquote(request.raw_path)))

    def _authenticate(self, request: Request) -> str:
        """The caller's client id, from a valid token for Azure Resource Manager."""
        try:
            token = bearer_token(request.header("Authorization"))
        except TokenError:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The "
                           "'Authorization' header is missing.") from None
        for audience in AUDIENCES:
            try:
                return self.batch.issuer.verify(token, audience).client_id
            except TokenError as e:
                if e.reason == "expired":
                    raise ArmError(401, "ExpiredAuthenticationToken", "The access token "
                                   "expiry UTC time is earlier than current UTC time '%s'."
                                   % time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())
                                   ) from None
                if e.reason != "audience":
                    raise ArmError(401, "InvalidAuthenticationToken", "The access token is "
                                   "invalid: %s" % e) from None
        raise ArmError(401, "InvalidAuthenticationTokenAudience", "The access token has been "
                       "obtained for wrong audience or resource. It should exactly match with "
                       "one of the allowed audiences 'https://management.core.windows.net/',"
                       "'https://management.azure.com/'.")

    def _check_account(self, request: Request) -> None:
        match = _ACCOUNT.match(unquote(request.raw_path))
        settings = self.batch.settings
        if not match:
            raise ArmError(404, "InvalidResourceType", "The local account plane serves only "
                           "Microsoft.Batch/batchAccounts/%s." % self.batch.account)
        subscription, group, account = match.group(1), match.group(2), match.group(3)
        if subscription.lower() != settings.subscription.lower():
            raise ArmError(404, "SubscriptionNotFound", "The subscription '%s' could not be "
                           "found." % subscription)
        if group.lower() != settings.resource_group.lower():
            raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be "
                           "found." % group)
        if account.lower() != self.batch.account.lower():
            raise ArmError(404, "ResourceNotFound", "The Resource 'Microsoft.Batch/"
                           "batchAccounts/%s' under resource group '%s' was not found."
                           % (account, group))


def _json(status: int, document: Any) -> Response:
    return Response(status, [("Content-Type", "application/json; charset=utf-8")],
                    json.dumps(document).encode())
