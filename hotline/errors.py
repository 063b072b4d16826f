"""One error base class; the API turns each into a JSON body that says what was wrong."""


class HotlineError(Exception):
    """An error the caller can act on; `status_code` is its HTTP status."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra


class NotAuthenticated(HotlineError):
    status_code = 401


class NotPermitted(HotlineError):
    status_code = 403


class NotFound(HotlineError):
    status_code = 404

    def __init__(self, message: str = "not found, or not visible to you", **extra: object) -> None:
        super().__init__(message, **extra)


class Conflict(HotlineError):
    """The event is not allowed in the ticket's state, or the ticket changed meanwhile."""

    status_code = 409


class Invalid(HotlineError):
    """Invalid input; `field` names the offending field."""

    status_code = 422

    def __init__(self, message: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(message, field=field, **extra)
        self.field = field


class TooManyRequests(HotlineError):
    """The caller sent more requests than its share; `retry_after` says when to come back."""

    status_code = 429
