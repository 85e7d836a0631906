"""Domain errors that carry their HTTP meaning.

geodata never imports Flask; ``server/errors.py`` turns these into JSON or
HTML responses using ``status``, ``code``, ``message`` and ``details``.
"""

from __future__ import annotations


class GridmapError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __reduce__(self):  # errors raised in a job process come back whole (details included)
        return type(self), (self.message, self.details)


class BadRequest(GridmapError):
    status = 400
    code = "bad_request"


class Unauthorized(GridmapError):
    status = 401
    code = "unauthorized"


class Forbidden(GridmapError):
    status = 403
    code = "forbidden"


class NotFound(GridmapError):
    status = 404
    code = "not_found"


class Conflict(GridmapError):
    status = 409
    code = "conflict"


class PreconditionFailed(GridmapError):
    status = 412
    code = "precondition_failed"


class Unprocessable(GridmapError):
    status = 422
    code = "unprocessable"


class TooLarge(GridmapError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(GridmapError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailable(GridmapError):
    """Too busy (or a job ran out of time): try again after ``retry_after`` seconds."""

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, details: list | None = None, retry_after: int = 5):
        super().__init__(message, details)
        self.retry_after = retry_after

    def __reduce__(self):
        return type(self), (self.message, self.details, self.retry_after)
