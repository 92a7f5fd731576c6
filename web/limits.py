"""The pages share the API's per-key rate limit (``TRAMITA_RATE_LIMIT_PER_MINUTE``): a
console session counts as its agent, a customer page as its ticket and requester, and a
sign-in or a link that does not read as the address it comes from (so neither a key nor
a link can be guessed at speed)."""

from __future__ import annotations

from fastapi import Request

from api.failures import TooManyRequests
from api.limits import RateLimiter
from config import Settings
from web import links
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
    """A link that reads counts as itself; one that does not, as the address it comes
    from (so a flood of made-up links fills no table and guesses nothing fast)."""
    settings: Settings = request.app.state.settings
    token = str(request.path_params.get("token", ""))
    link = links.read(
        settings.secret_key.get_secret_value(), token, max_age_days=settings.customer_link_days
    )
    if link is not None:
        _take(request, f"customer-page:{link.ticket_id}:{link.requester}")
    else:
        _take(request, f"customer-page-unread:{request.client.host if request.client else '-'}")
