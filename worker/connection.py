"""Why a call to an Azure service failed to connect, and which exit code says so.

A failure to connect is not always transient. A host name that does not resolve is a typo
in a URL, and a server certificate the CA bundle does not trust is a deployment mistake:
retrying either is futile, so both are configuration errors (exit 2) naming the setting to
fix; so is a proxy that refuses the credentials of ``HTTPS_PROXY``. Refused or reset
connections and timeouts are transient (exit 3). The SDKs wrap the
socket's error in a chain of their own (azure-core, requests, urllib3); it is read here, at
the boundary, by the lake, the vault and the identity alike.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Iterator, Mapping, Optional, Union

from .errors import ConfigError, RetryableError, WorkerError, first_line

_TLS_TEXT = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")
_DNS_TEXT = ("Name or service not known", "nodename nor servname", "No address associated")
_PROXY_AUTH_TEXT = ("407 Proxy Authentication Required", "Tunnel connection failed: 407")
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
#: Every variable that names a CA bundle for some client in a shell (OpenSSL's own, too).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


def ca_bundle(environ: Mapping[str, str]) -> Union[str, bool]:
    """The CA bundle requests would use (True: certifi's), checked to exist: a bundle
    that is missing is a configuration error, not a raw ``OSError`` at the first call."""
    for name in _CA_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            if not os.path.exists(value):
                raise ConfigError(
                    f"{name}={value!r} does not exist; point it at a PEM file of CA "
                    f"certificates, or unset {name} to use certifi's (for the emulators: "
                    "start them again and load their new env file)", code="config.ca_bundle")
            return value
    return True


def connection_error(error: BaseException, service: str, setting: str,
                     environ: Mapping[str, str]) -> WorkerError:
    """Our error for a call to ``service`` that could not connect; ``setting`` names the
    variable holding its URL (for the fix)."""
    if _untrusted(error):
        bundle = ca_bundle(environ)
        where = f"the CA bundle {bundle}" if isinstance(bundle, str) else "certifi's CA bundle"
        return ConfigError(
            f"{service}: the server's TLS certificate is not trusted by {where}; set "
            "REQUESTS_CA_BUNDLE to a bundle with the CA that signed it, or fix " + setting,
            code="config.tls")
    if _unresolved(error):
        return ConfigError(f"{service}: the host name does not resolve; check {setting}",
                           code="config.dns")
    if _proxy_refused(error):
        return ConfigError(
            f"{service}: the proxy refused the credentials (407 Proxy Authentication "
            "Required); check the user and password in HTTPS_PROXY (http://USER:PASSWORD@HOST:"
            "PORT, with @ : / % in them percent-encoded), or set NO_PROXY to bypass it",
            code="config.proxy")
    local = environ.get(setting, "")
    if refused_locally(error, local):
        from urllib.parse import urlsplit

        return RetryableError(
            f"{service}: nothing answers at {urlsplit(local.strip()).netloc} on this machine "
            f"(connection refused): is the emulator running (python -m worker emulate), and "
            f"does {setting} name its port? ('python -m worker doctor' checks each endpoint)")
    return RetryableError(
        f"{service} failed after the retries: {type(error).__name__}: "
        f"{first_line(error)}")


def refused_locally(error: BaseException, url: str) -> bool:
    """Whether a host on this machine refused the connection: nothing listens on that port
    (an emulator that is not running, or the wrong port), which retrying will not change."""
    if not url or not _has(error, ConnectionRefusedError):
        return False
    from urllib.parse import urlsplit

    from .probe import is_loopback

    return is_loopback(urlsplit(url.strip()).hostname or "")


def is_misconfiguration(error: BaseException) -> bool:
    """Whether a failure to connect is a deployment mistake that retrying cannot fix: an
    untrusted certificate, a host name that does not resolve, a proxy that refuses the
    credentials."""
    return _untrusted(error) or _unresolved(error) or _proxy_refused(error)


#: Exceptions (by class name, so that no HTTP library is imported for it) of a connection
#: that failed or broke off: requests', urllib3's and http.client's, under an SDK's own.
_BROKEN = {"ConnectionError", "ChunkedEncodingError", "ProtocolError", "IncompleteRead",
           "ReadTimeout", "ConnectTimeout", "ReadTimeoutError", "ConnectTimeoutError",
           "NewConnectionError", "RemoteDisconnected", "ServiceRequestError",
           "ServiceResponseError"}


def broke_off(error: BaseException) -> bool:
    """Whether a connection failed or broke off somewhere below ``error``: no whole answer
    came (a library may wrap that in an authentication or credential error)."""
    return any(isinstance(link, ConnectionError) or type(link).__name__ in _BROKEN
               for link in _chain(error))


def _proxy_refused(error: BaseException) -> bool:
    text = " ".join(_texts(error))
    return any(t in text for t in _PROXY_AUTH_TEXT)


def _untrusted(error: BaseException) -> bool:
    text = " ".join(_texts(error))
    return _has(error, ssl.SSLCertVerificationError) or any(t in text for t in _TLS_TEXT)


def _unresolved(error: BaseException) -> bool:
    return _unknown_host(error) or any(t in " ".join(_texts(error)) for t in _DNS_TEXT)


def _unknown_host(error: BaseException) -> bool:
    found = _find(error, socket.gaierror)
    return found is not None and found.errno in (socket.EAI_NONAME, getattr(
        socket, "EAI_NODATA", socket.EAI_NONAME))


def _has(error: BaseException, kind: type) -> bool:
    return _find(error, kind) is not None


def _find(error: BaseException, kind: type) -> Optional[BaseException]:
    for link in _chain(error):
        if isinstance(link, kind):
            return link
    return None


def _texts(error: BaseException) -> Iterator[str]:
    for link in _chain(error):
        yield str(link)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every exception it wraps: causes, contexts, azure-core's
    ``inner_exception``, urllib3's ``reason``, and exceptions among the args."""
    seen = set()
    todo = [error]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen or not isinstance(link, BaseException):
            continue
        seen.add(id(link))
        yield link
        todo.extend([link.__cause__, link.__context__, getattr(link, "inner_exception", None),
                     getattr(link, "reason", None)])
        todo.extend(a for a in link.args if isinstance(a, BaseException))
