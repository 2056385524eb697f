"""Shared Key authorization of the storage account: ``Authorization: SharedKey ACCOUNT:SIG``.

The signature is HMAC-SHA256, keyed with the base64-decoded account key, of the request's
string-to-sign (the storage REST reference, "Authorize with Shared Key", versions
2015-02-21 and later): the verb, eleven standard headers (Content-Length empty when 0), the
``x-ms-*`` headers in order, and the account with the encoded path and the decoded query.
The Blob and DFS endpoints sign alike.

Clients differ in two details the service tolerates, so both are tried: the order of the
``x-ms-*`` headers (Azure's collation ignores hyphens and puts ``_`` before digits and
letters; most clients sort by code point, and for the usual headers the two agree), and
``+`` in a query value (kept by some, read as a space by form decoders).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Iterable, List, Mapping, Optional, Tuple
from urllib.parse import unquote, unquote_plus

_STANDARD = ("content-encoding", "content-language", "content-length", "content-md5",
             "content-type", "date", "if-modified-since", "if-match", "if-none-match",
             "if-unmodified-since", "range")
_COLLATE = str.maketrans({"-": None, "_": "!"})


def signature(key: str, text: str) -> str:
    """base64(HMAC-SHA256(base64decode(key), text)): how Shared Key and SAS both sign."""
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _azure_order(name: str) -> Tuple[str, str]:
    return name.translate(_COLLATE), name


def _canonical_headers(headers: Iterable[Tuple[str, str]], azure_order: bool) -> str:
    found = {}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("x-ms-") and lower not in found:
            found[lower] = value.strip()
    names = sorted(found, key=_azure_order if azure_order else None)
    return "".join("%s:%s\n" % (n, found[n]) for n in names)


def _canonical_resource(account: str, raw_path: str, raw_query: str, plus_is_space: bool
                        ) -> str:
    decode = unquote_plus if plus_is_space else unquote
    params: dict = {}
    for pair in raw_query.split("&") if raw_query else []:
        name, _, value = pair.partition("=")
        params.setdefault(decode(name).lower(), []).append(decode(value))
    text = "/%s%s" % (account, raw_path)
    for name in sorted(params):
        text += "\n%s:%s" % (name, ",".join(sorted(params[name])))
    return text


def string_to_sign(method: str, raw_path: str, raw_query: str,
                   headers: Iterable[Tuple[str, str]], account: str,
                   azure_order: bool = True, plus_is_space: bool = False) -> str:
    """The request's Shared Key string-to-sign."""
    headers = list(headers)
    standard = {}
    for name, value in headers:
        standard.setdefault(name.lower(), value)
    if standard.get("content-length") == "0":
        standard["content-length"] = ""
    lines = [method] + [standard.get(h, "") for h in _STANDARD]
    return ("\n".join(lines) + "\n" + _canonical_headers(headers, azure_order)
            + _canonical_resource(account, raw_path, raw_query, plus_is_space))


def parse(authorization: Optional[str]) -> Optional[Tuple[str, str]]:
    """``SharedKey account:sig`` -> ``(account, sig)``; None for another scheme."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme != "SharedKey" or ":" not in credentials:
        return None
    account, _, sig = credentials.strip().partition(":")
    return account, sig


def verify(method: str, raw_path: str, raw_query: str, headers: Iterable[Tuple[str, str]],
           account: str, key: str, sig: str) -> Optional[str]:
    """None when ``sig`` signs this request, else the string-to-sign the service used (the
    service quotes it in its 403, and it names no secret)."""
    headers = list(headers)
    candidates: List[str] = []
    for azure_order in (True, False):
        for plus_is_space in (False, True):
            text = string_to_sign(method, raw_path, raw_query, headers, account, azure_order,
                                  plus_is_space)
            if text in candidates:
                continue
            if hmac.compare_digest(signature(key, text), sig):
                return None
            candidates.append(text)
    return candidates[0]


def account_paths(account: str, raw_path: str) -> List[str]:
    """The paths a client may have signed: path-style URLs carry the account as their first
    segment, and most clients sign the path as sent (``/account/account/fs/x`` in the
    canonical resource); some sign it without."""
    paths = [raw_path]
    prefix = "/" + account
    if raw_path == prefix or raw_path.startswith(prefix + "/"):
        paths.append(raw_path[len(prefix):] or "/")
    return paths


def check(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
          account: str, key: str, sig: str) -> Optional[str]:
    """None when the request is signed with ``key``, else the string-to-sign to report."""
    items = list(headers.items())
    first = None
    for path in account_paths(account, raw_path):
        problem = verify(method, path, raw_query, items, account, key, sig)
        if problem is None:
            return None
        first = first or problem
    return first
