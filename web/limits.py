"""The pages share the API's per-key rate limit (``TRAMITA_RATE_LIMIT_PER_MINUTE``): a
console session counts as its agent, a customer page as its link, and a sign-in as the
address it comes from (so a key cannot be guessed at speed)."""

from __future__ import annotations

from fastapi import Request

from api.failures import TooManyRequests
from api.limits import RateLimiter
from web.pages import PageRateLimited
from web.sessions import SESSION_COOKIE


def _take(request: Request, key: str) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    try:
        limiter.take(key)
    except TooManyRequests as refused:
        raise PageRateLimited(refused.retry_after) from None


async def limit_console(request: Request) -> None:
    if request.url.path.startswith("/console/sign-in") and request.method == "POST":
        _take(request, f"sign-in:{request.client.host if request.client else '-'}")
        return
    session = request.app.state.sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        _take(request, f"console:{session.principal.subject}")


async def limit_customer_page(request: Request) -> None:
    token = request.path_params.get("token", "")
    _take(request, f"customer-page:{token}")
