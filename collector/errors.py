"""The collector's error hierarchy: services raise these; the HTTP layer and CLI map them once."""


class KhienError(Exception):
    """Base of every error a collector service raises on purpose."""

    status_code = 400


class InvalidInput(KhienError):
    status_code = 422


class NotFound(KhienError):
    status_code = 404


class Conflict(KhienError):
    status_code = 409


class Unauthorized(KhienError):
    status_code = 401


class Forbidden(KhienError):
    status_code = 403


class PayloadTooLarge(KhienError):
    status_code = 413


class RateLimited(KhienError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(KhienError):
    """More batches are waiting than the server works through in a couple of seconds: refuse at once
    (the agent keeps the batch and retries after ``retry_after``) rather than queue requests their
    senders will have given up on by the time they are answered."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(KhienError):
    status_code = 503
