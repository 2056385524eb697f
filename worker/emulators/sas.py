"""Shared access signatures (SAS) of the emulated storage account: sign and verify.

A SAS is a query string that grants its bearer some rights on some resources until it
expires, signed with the account key (HMAC-SHA256 of a string-to-sign, the storage REST
reference's "Create a service SAS" and "Create an account SAS"):

- a *service SAS* (``sr`` = ``c`` container, ``b`` blob, ``d`` directory with ``sdd``) is
  bound to one resource of the Blob endpoint (the DFS endpoint accepts it too);
- an *account SAS* (``ss`` services, ``srt`` resource types) covers the account.

:func:`sign` makes a service SAS, as a service that hands out an upload URL does (the local
Batch service's application packages): ``sign(account, key, "packages", "app/1.0.zip",
permissions="cw")`` gives a token good for Put Blob, Put Block and Put Block List of that
blob for an hour. :func:`sign_account` makes an account SAS. :func:`verify` checks a request's
SAS and returns what it grants; the lake decides what each operation needs. Versions
2015-04-05 and later are understood (user delegation SAS, which needs Entra ID, is not).
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import re
from typing import Mapping, NamedTuple, Union
from urllib.parse import quote

from .shared_key import signature

#: The signed version of the SAS this module makes (any version since 2020-12-06 signs alike).
VERSION = "2024-11-04"
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?Z?)?$")
When = Union[datetime.datetime, float, int, None]


class SasError(Exception):
    """A SAS that does not authorize the request: the 403 the service answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Grant(NamedTuple):
    """What a verified SAS allows: its permissions and where.

    ``kind`` is ``account`` (then ``services`` and ``resource_types`` apply) or ``service``
    (then ``resource`` is ``c``, ``b`` or ``d`` and ``filesystem``/``path`` name it).
    """

    kind: str
    permissions: str
    services: str = ""
    resource_types: str = ""
    resource: str = ""
    filesystem: str = ""
    path: str = ""

    def covers(self, filesystem: str, path: str) -> bool:
        """Whether a service SAS's resource includes ``path`` of ``filesystem``."""
        if self.kind == "account":
            return True
        if filesystem != self.filesystem:
            return False
        if self.resource == "c":
            return True
        if self.resource == "d":
            return path == self.path or path.startswith(self.path + "/")
        return path == self.path


def _iso(moment: When) -> str:
    if moment is None:
        return ""
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(fields: Mapping[str, str]) -> str:
    return "&".join("%s=%s" % (k, quote(v, safe="")) for k, v in fields.items() if v)


def service_string(fields: Mapping[str, str], canonical_resource: str) -> str:
    """The string a service SAS signs, by its signed version ``sv``."""
    get = fields.get
    version = get("sv", "")
    lines = [get("sp", ""), get("st", ""), get("se", ""), canonical_resource, get("si", ""),
             get("sip", ""), get("spr", ""), version]
    if version >= "2018-11-09":
        lines += [get("sr", ""), get("snapshot", "")]
    if version >= "2020-12-06":
        lines.append(get("ses", ""))
    lines += [get(k, "") for k in ("rscc", "rscd", "rsce", "rscl", "rsct")]
    return "\n".join(lines)


def account_string(fields: Mapping[str, str], account: str) -> str:
    """The string an account SAS signs, by its signed version ``sv``."""
    keys = ["sp", "ss", "srt", "st", "se", "sip", "spr", "sv"]
    if fields.get("sv", "") >= "2020-12-06":
        keys.append("ses")
    return account + "\n" + "".join(fields.get(k, "") + "\n" for k in keys)


def _resource(account: str, filesystem: str, path: str) -> str:
    return "/blob/%s/%s%s" % (account, filesystem, "/" + path if path else "")


def sign(account: str, key: str, filesystem: str, path: str = "", permissions: str = "r",
         expiry: When = None, start: When = None, protocol: str = "https",
         version: str = VERSION) -> str:
    """A service SAS token (a query string without ``?``) for the container ``filesystem``
    (``path`` empty) or the blob ``path`` in it; ``expiry`` defaults to an hour from now.

    Permissions are the Blob service's letters, in its order: r(ead), a(dd), c(reate),
    w(rite), d(elete), l(ist), m(ove), e(xecute), o(wnership), p(ermissions).
    """
    if expiry is None:
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    fields = {"sv": version, "st": _iso(start), "se": _iso(expiry), "sr": "b" if path else "c",
              "sp": permissions, "spr": protocol}
    text = service_string(fields, _resource(account, filesystem, path))
    return _token(dict(fields, sig=signature(key, text)))


def sign_account(account: str, key: str, permissions: str = "rl", expiry: When = None,
                 services: str = "b", resource_types: str = "sco", start: When = None,
                 protocol: str = "https", version: str = VERSION) -> str:
    """An account SAS token for ``services`` (b: Blob, which includes the DFS endpoint)
    and ``resource_types`` (s: service, c: container, o: object)."""
    if expiry is None:
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    fields = {"sv": version, "ss": services, "srt": resource_types, "sp": permissions,
              "st": _iso(start), "se": _iso(expiry), "spr": protocol}
    text = account_string(fields, account)
    return _token(dict(fields, sig=signature(key, text)))


def is_sas(query: Mapping[str, str]) -> bool:
    return "sig" in query and "sv" in query


def _when(value: str) -> datetime.datetime:
    match = _TIME.match(value)
    if match is None:
        raise SasError("AuthenticationFailed", "Signed time %r is not in an ISO 8601 UTC "
                       "format." % value)
    parts = [int(p) if p else 0 for p in match.groups()]
    return datetime.datetime(*parts)  # type: ignore[misc]


def _check_window(fields: Mapping[str, str]) -> None:
    if not fields.get("se"):
        raise SasError("AuthenticationFailed", "Signed expiry time is required.")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    start = _when(fields["st"]) if fields.get("st") else None
    if now >= _when(fields["se"]) or (start is not None and now < start):
        raise SasError("AuthenticationFailed", "Signature not valid in the specified time "
                       "frame.")


def _check_address(fields: Mapping[str, str], client_ip: str) -> None:
    allowed = fields.get("sip")
    if not allowed:
        return
    low, _, high = allowed.partition("-")
    try:
        ip = ipaddress.ip_address(client_ip)
        if not ipaddress.ip_address(low) <= ip <= ipaddress.ip_address(high or low):
            raise SasError("AuthorizationSourceIPMismatch", "This request is not authorized "
                           "to perform this operation using this source IP %s." % client_ip)
    except ValueError as e:
        raise SasError("AuthenticationFailed", "Signed IP %r is not valid." % allowed) from e


def _scope(fields: Mapping[str, str], filesystem: str, path: str) -> str:
    """The directory or blob a service SAS names, from the request's path."""
    if fields.get("sr") == "d":
        depth = int(fields.get("sdd") or 0)
        parts = path.split("/") if path else []
        if depth > len(parts):
            raise SasError("AuthorizationFailure", "This request is not authorized to "
                           "perform this operation.")
        return "/".join(parts[:depth])
    return path if fields.get("sr") in ("b", "bs", "bv") else ""


def verify(query: Mapping[str, str], account: str, key: str, filesystem: str, path: str,
           client_ip: str = "127.0.0.1") -> Grant:
    """Check the SAS in ``query`` for a request on ``path`` of ``filesystem`` (both empty
    for the account); return what it grants, or raise SasError with the service's code."""
    fields = dict(query)
    if fields.get("sv", "") < "2015-04-05":
        raise SasError("AuthenticationFailed", "Signed version %r is not supported."
                       % fields.get("sv"))
    account_sas = "ss" in fields or "srt" in fields
    if account_sas:
        text = account_string(fields, account)
    else:
        scope = _scope(fields, filesystem, path)
        text = service_string(fields, _resource(account, filesystem, scope))
    if not hmac.compare_digest(signature(key, text), fields.get("sig", "")):
        raise SasError("AuthenticationFailed", "Signature did not match. String to sign used "
                       "was %s" % text.replace("\n", "\\n"))
    _check_window(fields)
    _check_address(fields, client_ip)
    if account_sas:
        return Grant("account", fields.get("sp", ""), fields.get("ss", ""),
                     fields.get("srt", ""))
    return Grant("service", fields.get("sp", ""), resource=fields.get("sr", ""),
                 filesystem=filesystem, path=scope)
