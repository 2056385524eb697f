"""The lake's one error type: a service error with its HTTP status, code and message."""

from __future__ import annotations

from typing import List, Optional, Tuple


class LakeError(Exception):
    """A service error: HTTP status, the service's error code and message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Optional[List[Tuple[str, str]]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []
