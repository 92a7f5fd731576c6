"""The domain errors the API's services raise. ``api.errors`` alone turns them into HTTP.

The core's own :class:`workflows.transaction.CommandRejected` (a command or request that
the rules refuse) is the fourth kind; it is raised as it is.
"""

from __future__ import annotations


class TicketNotFound(Exception):
    """No such ticket, or one the requester may not know of (same answer for both)."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id} not found")
        self.ticket_id = ticket_id


class Unavailable(Exception):
    """Temporal or a worker did not do what was asked in time.

    ``retryable`` says whether the same request may simply be sent again (with the same
    ``Idempotency-Key`` it still applies once): true when nothing was applied or the
    outcome is unknown but safe to ask again, false when asking again cannot help.
    """

    def __init__(self, detail: str, *, retryable: bool = True, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


class InvalidRequest(Exception):
    """Input the API refuses before any ticket sees it (a 422)."""

    def __init__(self, detail: str, *, code: str = "validation_error") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class IdempotencyKeyReused(InvalidRequest):
    """An ``Idempotency-Key`` already used by this caller for another command or body."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="idempotency_key_reused")


class TooManyRequests(Exception):
    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
