"""Who calls the lake, and whether they may: bearer tokens, Shared Key and SAS.

Three ways in, as on a storage account:

- ``Authorization: Bearer`` with a token from the emulated IMDS: the identity's grants in
  the configuration decide (``config.py``);
- ``Authorization: SharedKey ACCOUNT:SIG`` signed with the account key: the account's owner,
  who may do anything;
- a SAS in the query string (``sig=...``), signed with the account key: what it grants.

Each operation names what it needs (:class:`Operation`): whether it writes, at which level
it acts, and for a SAS the permission letters and the account SAS resource type.
"""

from __future__ import annotations

import email.utils
import time
from typing import NamedTuple, Optional

from . import sas, shared_key
from .config import EmulatorConfig, Identity
from .lake_errors import LakeError
from .server import Request
from .tokens import TENANT_ID, TokenError, TokenIssuer, bearer_token

AUDIENCE = "https://storage.azure.com"
FORBIDDEN = "This request is not authorized to perform this operation using this permission."
_SIGNED_BADLY = ("Server failed to authenticate the request. Make sure the value of "
                 "Authorization header is formed correctly including the signature.")
_CLOCK_SKEW = 15 * 60


class Operation(NamedTuple):
    """What an operation needs.

    ``api``: ``blob`` or ``dfs`` (the error shape); ``scope``: ``account``, ``filesystem``
    or ``path`` (where a token's grant must reach); ``permissions``: SAS letters, any of
    which allows it ("" any SAS); ``resource_type``: the account SAS ``srt`` letter.
    """

    api: str
    write: bool
    scope: str
    permissions: str
    resource_type: str


#: What reading a Copy Blob's source needs.
READ_SOURCE = Operation("blob", False, "path", "r", "o")


class Caller:
    """An authenticated caller; :meth:`check` raises the 403 the service would answer."""

    name = "caller"

    def check(self, op: Operation, filesystem: str, path: str) -> None:
        raise NotImplementedError


class TokenCaller(Caller):
    """A managed identity with the grants of the configuration."""

    name = "token"

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def check(self, op: Operation, filesystem: str, path: str) -> None:
        identity = self.identity
        if op.scope == "account":
            allowed = bool(identity.lake)
        elif op.scope == "filesystem":
            allowed = identity.may_lake(filesystem, "", True) if op.write else \
                identity.may_touch_filesystem(filesystem)
        else:
            allowed = identity.may_lake(filesystem, path, op.write)
        if not allowed:
            raise LakeError(403, "AuthorizationPermissionMismatch", FORBIDDEN)


class KeyCaller(Caller):
    """The holder of the account key: the owner of everything in the account."""

    name = "shared_key"

    def check(self, op: Operation, filesystem: str, path: str) -> None:
        return None


class SasCaller(Caller):
    """The bearer of a SAS: its permissions on its resources, until it expires."""

    name = "sas"

    def __init__(self, grant: sas.Grant) -> None:
        self.grant = grant

    def check(self, op: Operation, filesystem: str, path: str) -> None:
        grant = self.grant
        if not op.permissions and not op.resource_type:
            return  # any valid SAS: account information, a batch (each part checked alone)
        if grant.kind == "account":
            if "b" not in grant.services:
                raise LakeError(403, "AuthorizationServiceMismatch", "This request is not "
                                "authorized to perform this operation using this service.")
            if op.resource_type and op.resource_type not in grant.resource_types:
                raise _resource_type_mismatch()
        elif op.scope == "account" or (op.scope == "filesystem" and grant.resource != "c") \
                or not grant.covers(filesystem, path):
            raise _resource_type_mismatch()
        if op.permissions and not any(p in grant.permissions for p in op.permissions):
            raise LakeError(403, "AuthorizationPermissionMismatch", FORBIDDEN)


def _resource_type_mismatch() -> LakeError:
    return LakeError(403, "AuthorizationResourceTypeMismatch", "This request is not "
                     "authorized to perform this operation using this resource type.")


class Authenticator:
    """Turns a request's credentials into a :class:`Caller`, or the service's 401/403."""

    def __init__(self, config: EmulatorConfig, issuer: TokenIssuer) -> None:
        self.config = config
        self.issuer = issuer

    def caller(self, request: Request, filesystem: str, path: str) -> Caller:
        if sas.is_sas(request.query):
            return self._sas(request, filesystem, path)
        authorization = request.header("Authorization")
        signed = shared_key.parse(authorization)
        if signed is not None:
            return self._shared_key(request, *signed)
        return self._token(authorization)

    def _sas(self, request: Request, filesystem: str, path: str) -> Caller:
        try:
            return SasCaller(sas.verify(request.query, self.config.account,
                                        self.config.account_key, filesystem, path))
        except sas.SasError as e:
            raise LakeError(403, e.code, e.message) from e

    def _shared_key(self, request: Request, account: str, sig: str) -> Caller:
        if account != self.config.account:
            raise LakeError(403, "AuthenticationFailed", _SIGNED_BADLY + " The account %s "
                            "in the Authorization header is not this account." % account)
        _check_date(request)
        problem = shared_key.check(request.method, request.raw_path, request.raw_query,
                                   request.headers, account, self.config.account_key, sig)
        if problem is not None:
            raise LakeError(403, "AuthenticationFailed", _SIGNED_BADLY + " The MAC signature "
                            "found in the HTTP request '%s' is not the same as any computed "
                            "signature. Server used following string to sign: '%s'."
                            % (sig, problem))
        return KeyCaller()

    def _token(self, authorization: Optional[str]) -> Caller:
        try:
            claims = self.issuer.verify(bearer_token(authorization), AUDIENCE)
        except TokenError as e:
            if e.reason == "missing":
                raise LakeError(401, "NoAuthenticationInformation", "Server failed to "
                                "authenticate the request. Please refer to the information in "
                                "the www-authenticate header.") from e
            raise LakeError(401, "InvalidAuthenticationInfo", "Server failed to authenticate "
                            "the request. Please refer to the information in the "
                            "www-authenticate header. %s" % e) from e
        identity = self.config.identity(claims.client_id)
        if identity is None:
            raise LakeError(403, "AuthorizationPermissionMismatch", FORBIDDEN)
        return TokenCaller(identity)


def _check_date(request: Request) -> None:
    """A Shared Key request carries its date (x-ms-date or Date), at most 15 minutes off."""
    value = request.header("x-ms-date") or request.header("Date")
    when: Optional[float] = None
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            when = None
    if when is None or abs(time.time() - when) > _CLOCK_SKEW:
        raise LakeError(403, "AuthenticationFailed", _SIGNED_BADLY + " Request date header "
                        "missing, malformed or more than 15 minutes off: %r." % value)


def challenge() -> str:
    """The WWW-Authenticate of a 401: where to get a token, for which resource."""
    return ("Bearer authorization_uri=https://login.microsoftonline.com/%s/oauth2/authorize"
            " resource_id=%s" % (TENANT_ID, AUDIENCE))
