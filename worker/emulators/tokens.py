"""Signed, expiring bearer tokens: what the emulated IMDS issues and the lake and vault check.

The format is a real JWT (HS256): ``base64url(header).base64url(claims).base64url(hmac)``.
Clients never look inside (to the SDK a token is an opaque string), but a JWT keeps the
tokens debuggable with any JWT tool, and carries the claims the services check: the
audience (``aud``), the validity window (``nbf`` to ``exp``) and the calling identity
(``appid``). A token is refused before its ``nbf`` and from its ``exp``, with no clock skew
allowed (Azure allows a few minutes): a clock bug shows here first.

The HMAC key is random per process unless given (``--data DIR`` keeps it on disk so that
tokens cached by clients survive an emulator restart, as real tokens survive a service
restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any, Dict, NamedTuple, Optional, Tuple

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ISSUER = "https://sts.windows.net/%s/" % TENANT_ID
DEFAULT_LIFETIME = 24 * 3600


class TokenError(Exception):
    """A token was missing, malformed, badly signed, expired or for another audience.

    ``reason`` is one of ``missing``, ``malformed``, ``signature``, ``expired``,
    ``not_yet_valid``, ``audience``: the services turn it into their own 401 shapes.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Claims(NamedTuple):
    """What a verified token says: who is calling, for which service, until when."""

    client_id: str
    audience: str
    expires_on: int


def normalize_audience(resource: str) -> str:
    """``https://storage.azure.com/`` and ``https://storage.azure.com`` are one audience."""
    return resource.rstrip("/")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies tokens with one HMAC key."""

    def __init__(self, key: Optional[bytes] = None, lifetime: int = DEFAULT_LIFETIME) -> None:
        self.key = key or os.urandom(32)
        self.lifetime = lifetime

    def issue(
        self, client_id: str, resource: str, lifetime: Optional[int] = None,
        not_before: Optional[int] = None,
    ) -> Tuple[str, int]:
        """Return ``(token, expires_on)`` for ``client_id`` and the audience ``resource``.

        ``not_before`` (epoch seconds) defaults to five minutes ago, as Entra ID's tokens.
        """
        now = int(time.time())
        expires_on = now + (self.lifetime if lifetime is None else lifetime)
        claims = {
            "aud": normalize_audience(resource),
            "iss": ISSUER,
            "iat": now,
            "nbf": now - 300 if not_before is None else not_before,
            "exp": expires_on,
            "appid": client_id,
            "oid": client_id,
            "tid": TENANT_ID,
        }
        return self._sign(claims), expires_on

    def verify(self, token: str, audience: str) -> Claims:
        """Check signature, validity window and audience; raise TokenError when any fails."""
        claims = self._decode(token)
        now = time.time()
        if claims.get("exp", 0) <= now:
            raise TokenError("expired", "Lifetime validation failed, the token is expired.")
        if claims.get("nbf", 0) > now:
            raise TokenError("not_yet_valid",
                             "Lifetime validation failed, the token is not yet valid.")
        if claims.get("aud") != normalize_audience(audience):
            raise TokenError("audience", "Audience validation failed. Audience did not match.")
        return Claims(str(claims.get("appid", "")), claims["aud"], int(claims["exp"]))

    def _sign(self, claims: Dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = ("%s.%s" % (header, body)).encode("ascii")
        signature = hmac.new(self.key, signing_input, hashlib.sha256).digest()
        return "%s.%s.%s" % (header, body, _b64(signature))

    def _decode(self, token: str) -> Dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed", "The token is not a JWT.")
        signing_input = ("%s.%s" % (parts[0], parts[1])).encode("ascii", "replace")
        expected = hmac.new(self.key, signing_input, hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except ValueError as e:
            raise TokenError("malformed", "The token could not be decoded.") from e
        if not hmac.compare_digest(signature, expected):
            raise TokenError("signature", "Signature validation failed.")
        if not isinstance(claims, dict):
            raise TokenError("malformed", "The token claims are not an object.")
        return claims


def bearer_token(authorization: Optional[str]) -> str:
    """The token of an ``Authorization: Bearer x`` header, or TokenError('missing')."""
    if not authorization:
        raise TokenError("missing", "Request is missing a Bearer token.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("missing", "Only Bearer tokens are accepted.")
    return token.strip()
