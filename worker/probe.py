"""Does an endpoint accept connections? A TCP connect with a short timeout, for ``doctor``.

The SDKs retry a refused connection with backoff, for every request and every credential
in a chain: against an emulator that is not running, that is a minute and a half of waiting
to learn one fact. One connect per endpoint tells it in milliseconds (or within the timeout
for a host that does not answer), and names the likely cause.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Optional, Tuple
from urllib.parse import urlparse

#: Seconds a connect may take before the endpoint counts as not answering.
CONNECT_TIMEOUT = 3.0

#: Where azure-identity sends managed-identity token requests when nothing redirects it.
IMDS_URL = "http://169.254.169.254"

_EMULATOR_FIX = (
    "is the emulator running? Start it with 'python -m worker emulate --env-file "
    ".emulators.env' and load that file ('set -a; . .emulators.env; set +a')"
)


@dataclass(frozen=True)
class Endpoint:
    """A service the configuration talks to: what it is, its URL, the variable naming it."""

    what: str
    url: str
    setting: str

    @property
    def host_port(self) -> Tuple[str, int]:
        parsed = urlparse(self.url)
        default = 80 if parsed.scheme == "http" else 443
        return parsed.hostname or "", parsed.port or default

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host_port[0])


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a service on this machine (the emulators)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unreachable(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT) -> Optional[str]:
    """None when a TCP connection to the endpoint opens; else what went wrong, in words."""
    host, port = endpoint.host_port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"the host name {host!r} does not resolve"
    except ConnectionRefusedError:
        return f"{host}:{port} refuses connections"
    except socket.timeout:
        return f"{host}:{port} did not answer within {timeout:g} s"
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"


def fix_for(endpoint: Endpoint, problem: str) -> str:
    """The likely fix for ``problem`` (from :func:`unreachable`)."""
    if endpoint.loopback:
        return _EMULATOR_FIX
    if "does not resolve" in problem:
        return f"check the host name in {endpoint.setting}"
    if "refuses" in problem:
        return f"check the port in {endpoint.setting}: nothing listens there"
    return (
        "check the network path: the storage account's or vault's firewall must admit this "
        "machine (on Batch, the pool's subnet), and no proxy may block it"
    )
