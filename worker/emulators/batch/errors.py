"""Batch's errors as its REST API answers them: an OData body with the error code, a message
(with the request id and time appended, as the service does) and ``values`` (key, value)
naming what was wrong, under the status the error code goes with.

Codes and messages follow "Batch Status and Error Codes" (Batch REST reference); an error
raised anywhere below the app is a :class:`BatchError` and becomes exactly one such answer.
"""

from __future__ import annotations

import json
import time
from typing import Dict, List, Optional, Sequence, Tuple

MESSAGES: Dict[str, str] = {
    "MissingRequiredProperty": "A required property was not specified in the request body.",
    "UnsupportedProperty": "One of the properties specified in the request body is not "
                           "supported.",
    "InvalidPropertyValue": "The value provided for one of the properties in the request "
                            "body is invalid.",
    "InvalidRequestBody": "The specified Request Body is not syntactically valid.",
    "MissingRequiredQueryParameter": "A required query parameter was not specified for this "
                                     "request.",
    "UnsupportedQueryParameter": "One of the query parameters specified in the request URI "
                                 "is not supported.",
    "InvalidQueryParameterValue": "Value for one of the query parameters specified in the "
                                  "request URI is invalid.",
    "InvalidHeaderValue": "The value provided for one of the HTTP headers was not in the "
                          "correct format.",
    "InvalidUri": "The requested URI does not represent any resource on the server.",
    "UnsupportedHttpVerb": "The resource doesn't support the specified HTTP verb.",
    "UnsupportedRequestVersion": "The specified request version is not supported.",
    "AuthenticationFailed": "Server failed to authenticate the request. Make sure the value "
                            "of Authorization header is formed correctly including the "
                            "signature.",
    "AuthorizationFailure": "This request is not authorized to perform this operation.",
    "RequestBodyTooLarge": "The size of the request body exceeds the maximum size permitted.",
    "ConditionNotMet": "The condition specified using HTTP conditional header(s) is not met.",
    "InvalidRange": "The range specified is invalid for the current size of the resource.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
    "OperationTimedOut": "The operation could not be completed within the permitted time.",
    "ServerBusy": "The server is currently unable to receive requests. Please retry your "
                  "request.",
    "PoolNotFound": "The specified pool does not exist.",
    "NodeNotFound": "The specified node does not exist.",
    "JobNotFound": "The specified job does not exist.",
    "TaskNotFound": "The specified task does not exist.",
    "FileNotFound": "The specified file does not exist.",
    "ApplicationNotFound": "The specified application does not exist.",
    "PoolExists": "The specified pool already exists.",
    "JobExists": "The specified job already exists.",
    "TaskExists": "The specified task already exists.",
    "PoolBeingDeleted": "The specified pool has been marked for deletion and is being "
                        "reclaimed.",
    "PoolBeingResized": "The specified pool is being resized.",
    "JobBeingDeleted": "The specified job has been marked for deletion and is being garbage "
                       "collected.",
    "JobBeingTerminated": "The specified job is being terminated.",
    "JobCompleted": "The specified job is already in a completed state.",
    "JobNotActive": "The specified job is not in active state.",
    "JobDisabled": "The specified job is disabled.",
    "TaskCompleted": "The specified task is already in a completed state.",
    "TaskNotCompleted": "The specified task is not in a completed state, and the requested "
                        "operation can be performed only on completed tasks.",
    "TaskSucceeded": "The specified task has already completed successfully, and the "
                     "requested operation cannot be performed on successful tasks.",
    "OperationInvalidForCurrentState": "The specified operation is not valid for the current "
                                       "state of the resource.",
    "OperationNotValidOnNode": "The specified operation is not valid on the node.",
    "InvalidAutoScalingSettings": "The specified auto-scaling settings are not valid.",
    "AutoScalingFormulaSyntaxError": "The specified auto-scaling formula has a syntax error.",
    "AutoScaleTooManyRequestsToEnable": "Too many Enable Pool AutoScale requests are issued "
                                        "on the pool.",
    "PoolQuotaReached": "Pool quota for the account has been reached.",
    "InvalidApplicationPackageReferences": "One or more of the specified application package "
                                           "references are invalid.",
    "TaskDependenciesNotSpecifiedOnJob": "The specified task depends on other tasks, but the "
                                         "job does not specify that it uses task "
                                         "dependencies.",
    "TaskDependencyListTooLong": "The list of tasks the specified task depends on is too "
                                 "long.",
}

STATUS: Dict[str, int] = {
    "AuthenticationFailed": 403, "AuthorizationFailure": 403, "RequestBodyTooLarge": 413,
    "InvalidRange": 416,
    "InternalError": 500, "OperationTimedOut": 500, "ServerBusy": 503,
    "UnsupportedHttpVerb": 405, "ConditionNotMet": 412,
    "AutoScaleTooManyRequestsToEnable": 503,
}
for _code in ("PoolNotFound", "NodeNotFound", "JobNotFound", "TaskNotFound", "FileNotFound",
              "ApplicationNotFound"):
    STATUS[_code] = 404
for _code in ("PoolExists", "JobExists", "TaskExists", "PoolBeingDeleted", "PoolBeingResized",
              "JobBeingDeleted", "JobBeingTerminated", "JobCompleted", "JobNotActive",
              "JobDisabled", "TaskCompleted", "TaskNotCompleted", "TaskSucceeded",
              "OperationInvalidForCurrentState", "OperationNotValidOnNode",
              "InvalidApplicationPackageReferences", "TaskFilesUnavailable",
              "PoolQuotaReached"):
    STATUS[_code] = 409


class BatchError(Exception):
    """One of Batch's errors: its status, code, message and values."""

    def __init__(self, code: str, message: Optional[str] = None,
                 values: Sequence[Tuple[str, str]] = (), status: Optional[int] = None,
                 headers: Sequence[Tuple[str, str]] = ()) -> None:
        super().__init__("%s: %s" % (code, message or MESSAGES.get(code, code)))
        self.code = code
        self.message = message or MESSAGES.get(code, code)
        self.values = list(values)
        self.status = status or STATUS.get(code, 400)
        self.headers = list(headers)

    def body(self, account_url: str, request_id: str) -> bytes:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".0000000Z"
        document: Dict[str, object] = {
            "odata.metadata": "%s/$metadata#Microsoft.Azure.Batch.Protocol.Entities."
                              "Container.errors/@Element" % account_url,
            "code": self.code,
            "message": {"lang": "en-US",
                        "value": "%s\nRequestId:%s\nTime:%s" % (self.message, request_id,
                                                                stamp)},
        }
        if self.values:
            document["values"] = [{"key": k, "value": v} for k, v in self.values]
        return json.dumps(document).encode()


def property_error(code: str, name: str, value: object = None, reason: str = "") -> BatchError:
    """A body Batch refuses: the property (its path in the body), its value, why."""
    values: List[Tuple[str, str]] = [("PropertyName", name)]
    if value is not None:
        values.append(("PropertyValue", value if isinstance(value, str) else
                       json.dumps(value)))
    if reason:
        values.append(("Reason", reason))
    return BatchError(code, values=values)


def query_error(code: str, name: str, value: str = "", reason: str = "") -> BatchError:
    values = [("QueryParameterName", name)]
    if value:
        values.append(("QueryParameterValue", value))
    if reason:
        values.append(("Reason", reason))
    return BatchError(code, values=values)
