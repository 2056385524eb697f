"""Who may call the Batch account: Shared Key, as ``az batch --account-key`` and the SDKs'
shared-key credentials sign a request, or an Entra token for the Batch resource
(``https://batch.core.windows.net/``) from the emulated identity endpoint.

Shared Key's string to sign: the verb; the values of Content-Encoding, Content-Language,
Content-Length, Content-MD5, Content-Type, Date, If-Modified-Since, If-Match, If-None-Match,
If-Unmodified-Since and Range, one a line; every header whose name holds ``ocp-`` as
``name:value`` lines sorted by name; ``/ACCOUNT/PATH``; and each query parameter, sorted,
as ``\\nname:value`` (its first value, decoded; empty ones left out). The signature is the
base64 HMAC-SHA256 of that text under the base64-decoded account key.

A wrong signature is Batch's 403 ``AuthenticationFailed``; a token that is expired, badly
signed or for another audience its 401 with the same code; the detail is in the error's
``AuthenticationErrorDetail`` value, as the service gives it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Optional
from urllib.parse import parse_qs

from ..tokens import TokenError, TokenIssuer, bearer_token
from .errors import BatchError

AUDIENCE = "https://batch.core.windows.net/"
SIGNED_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5",
                  "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                  "if-unmodified-since", "range")
_TOKEN_DETAIL = {
    "expired": "Lifetime validation failed. The token is expired.",
    "not_yet_valid": "Lifetime validation failed. The token is not yet valid.",
    "signature": "Signature validation failed. The token's signature is not valid.",
    "malformed": "The access token is malformed.",
    "missing": "The request has no Authorization header of a supported scheme.",
}


def authenticate(method: str, path: str, query: str, headers: Any, account: str, key: str,
                 issuer: TokenIssuer) -> Optional[str]:
    """Who calls: the client id of a valid Batch token, None for a request signed with the
    key (which may do anything); :class:`BatchError` for anything else."""
    authorization = headers.get("Authorization") or ""
    scheme, _, credentials = authorization.partition(" ")
    if scheme == "SharedKey":
        _check_shared_key(method, path, query, headers, account, key, credentials)
        return None
    return _check_token(authorization, issuer)


def string_to_sign(method: str, path: str, query: str, headers: Any, account: str) -> str:
    values = {name.lower(): value for name, value in headers.items() if value}
    text = method + "\n" + "".join("%s\n" % values.get(h, "") for h in SIGNED_HEADERS)
    ocp = sorted((name.lower(), value) for name, value in headers.items()
                 if "ocp-" in name.lower() and value)
    text += "".join("%s:%s\n" % pair for pair in ocp)
    text += "/%s%s" % (account, path)
    parsed = parse_qs(query)
    for name in sorted(parsed):
        if parsed[name][0]:
            text += "\n%s:%s" % (name, parsed[name][0])
    return text


def sign(text: str, key: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_shared_key(method: str, path: str, query: str, headers: Any, account: str,
                      key: str, credentials: str) -> None:
    name, _, signature = credentials.partition(":")
    if name != account:
        raise _failed(403, "The account %r in the Authorization header is not this account "
                           "(%s)." % (name, account))
    expected = sign(string_to_sign(method, path, query, headers, account), key)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise _failed(403, "The MAC signature found in the HTTP request '%s' is not the same "
                           "as any computed signature." % signature.strip())


def _check_token(authorization: str, issuer: TokenIssuer) -> str:
    try:
        return issuer.verify(bearer_token(authorization or None), AUDIENCE).client_id
    except TokenError as e:
        if e.reason == "audience":
            detail = _audience_detail(authorization, issuer)
        else:
            detail = _TOKEN_DETAIL.get(e.reason, str(e))
        raise _failed(401, detail, shared_key=False) from None


def _audience_detail(authorization: str, issuer: TokenIssuer) -> str:
    audience = "?"
    try:  # the claims, once the signature is known good
        part = bearer_token(authorization).split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        audience = claims.get("aud", audience)
    except (TokenError, ValueError, IndexError, AttributeError):
        pass
    return ("The access token has been obtained from wrong audience or resource '%s'. It "
            "should exactly match (including forward slash) with one of the allowed "
            "audiences '%s'" % (audience, AUDIENCE))


def _failed(status: int, detail: str, shared_key: bool = True) -> BatchError:
    message = ("Server failed to authenticate the request. Make sure the value of "
               "Authorization header is formed correctly%s." % (
                   " including the signature" if shared_key else ""))
    return BatchError("AuthenticationFailed", message, [("AuthenticationErrorDetail", detail)],
                      status=status)
