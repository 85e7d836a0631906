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


class TryLater(GridmapError):
    """A refusal for now: ``retry_after`` seconds until a try may pass (the Retry-After header)."""

    retry_after_default = 5

    def __init__(self, message: str, details: list | None = None, retry_after: int | None = None):
        super().__init__(message, details)
        self.retry_after = self.retry_after_default if retry_after is None else retry_after

    def __reduce__(self):
        return type(self), (self.message, self.details, self.retry_after)


class TooManyRequests(TryLater):
    """Too many tries (failed sign-ins, bad tokens)."""

    status = 429
    code = "too_many_requests"
    retry_after_default = 60


class ServiceUnavailable(TryLater):
    """Too busy (or a job ran out of time)."""

    status = 503
    code = "service_unavailable"


class InsufficientStorage(GridmapError):
    """The disk (or the service's quota) is full: nothing was stored."""

    status = 507
    code = "insufficient_storage"


class DamagedStore(GridmapError):
    """A layer's record (its manifest) cannot be read: the server must not guess; ``python -m server repair``."""

    status = 500
    code = "damaged_store"

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = path

    def __reduce__(self):
        return type(self), (self.message, self.path)


class ImportFailed(DamagedStore):
    """Importing an old data directory stopped: the server must not start on a partly imported history."""

    code = "import_failed"
