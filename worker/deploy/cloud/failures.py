"""The Azure SDKs' exceptions as our one-line errors, at the boundary (one mapping helper).

Each line keeps the service's words (its error code and message), the request id the service
gave and the client request id (the same across the SDK's retries), and says what to do:
the role to ask for, the setting to check, the quota to raise. Called as ``raise
translate(e, "creating job J", where)`` by every module that calls the SDKs.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

from ...connection import connection_error
from ...errors import first_line
from ..errors import (
    AccessError,
    CloudError,
    CloudTransient,
    DeployError,
    NotFoundError,
    QuotaError,
)

#: The built-in role that covers what the deploy loop does on a Batch account (its
#: applications and pools through ARM, its jobs and tasks through the data plane).
BATCH_ROLE = "Azure Batch Data Contributor"


class Where:
    """What the failing call was aimed at, for the fixes: the account, how we signed in."""

    def __init__(self, account: str = "", url: str = "", shared_key: bool = False,
                 setting: str = "--account-url") -> None:
        self.account, self.url, self.shared_key, self.setting = account, url, shared_key, setting


def translate(error: BaseException, doing: str, where: Optional[Where] = None,
              not_found: str = "") -> DeployError:
    """Our error for an SDK failure while ``doing`` (e.g. "creating job sales"); a 404 says
    ``not_found`` (its fix) when given."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    where = where or Where()
    if isinstance(error, HttpResponseError) and getattr(error, "status_code", None):
        return _from_response(error, doing, where, not_found)
    if isinstance(error, ClientAuthenticationError):  # no token: nothing was sent
        return AccessError("%s: no Azure sign-in worked (%s): run az login, or set the "
                           "variables of a service principal or managed identity "
                           "(AZURE_CLIENT_ID, ...), or pass --shared-key with "
                           "AZURE_BATCH_ACCESS_KEY set" % (doing, first_line(error)))
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        found = connection_error(error, "%s (%s)" % (doing, where.url or "Azure"),
                                 where.setting, {})
        if found.exit_code == CloudTransient.exit_code:
            return CloudTransient(str(found))
        return CloudError(str(found), code=found.code)
    return CloudError("%s: %s: %s" % (doing, type(error).__name__, first_line(error)))


def _from_response(error: Any, doing: str, where: Where, not_found: str) -> DeployError:
    status = error.status_code
    code, message = service_words(error)
    said = "%s: %d %s: %s%s" % (doing, status, code or "?", message, request_ids(error))
    if status == 401 or (status == 403 and code == "AuthenticationFailed"):
        if where.shared_key:
            return AccessError("%s: the shared key (AZURE_BATCH_ACCESS_KEY) is not account "
                               "%s's: copy a current key (az batch account keys list)"
                               % (said, where.account or "?"))
        return AccessError("%s: sign in again (az login) or check the credential's tenant"
                           % said)
    if status == 403:
        if code == "LinkedAuthorizationFailed":
            return AccessError("%s: the pool's user-assigned identity needs you to hold "
                               "\"Managed Identity Operator\" on it" % said)
        return AccessError("%s: ask for the \"%s\" role on Batch account %s (az role "
                           "assignment create --role \"%s\" --assignee YOU --scope "
                           "ACCOUNT_ID)" % (said, BATCH_ROLE, where.account or "?", BATCH_ROLE))
    if "quota" in (code or "").lower() or "quota" in message.lower()[:200]:
        return QuotaError("%s: the account's quota is reached: ask for more (Azure portal, "
                          "the Batch account's Quotas) or free what holds it" % said)
    if status == 404:
        return NotFoundError("%s: %s" % (said, not_found or "check the name and the account "
                                         "(%s)" % (where.url or where.account or "?")))
    if status == 429 or status >= 500:
        return CloudTransient("%s: the service kept failing after the retries: run the "
                              "command again" % said)
    return CloudError(said)


def service_words(error: Any) -> Tuple[str, str]:
    """The service's error code and message (first line), as the SDK parsed them."""
    odata = getattr(error, "error", None)
    code = getattr(odata, "code", None) or ""
    message = getattr(odata, "message", None) or getattr(error, "reason", None) or ""
    if not code:
        model = getattr(error, "model", None)
        code = getattr(model, "code", None) or ""
    text = str(message).strip()
    return str(code), (text.splitlines()[0] if text else "")


def request_ids(error: Any) -> str:
    """``; request-id R, client-request-id C`` from the response (empty when unknown)."""
    response = getattr(error, "response", None)
    headers: Mapping[str, str] = getattr(response, "headers", None) or {}
    request = getattr(response, "request", None)
    sent: Mapping[str, str] = getattr(request, "headers", None) or {}
    server = headers.get("request-id") or headers.get("x-ms-request-id")
    client = (headers.get("client-request-id") or sent.get("client-request-id")
              or sent.get("x-ms-client-request-id"))
    parts = ["request-id %s" % server] if server else []
    if client:
        parts.append("client-request-id %s" % client)
    return " (%s)" % ", ".join(parts) if parts else ""
