"""Rendering the pages: Jinja2 templates (``web/templates``), escaped by default, and the
headers every page goes out with.

No page loads anything from elsewhere (the content security policy says so), none may
be framed, none is cached, and none sends a Referer: the customer page's address is its
credential and must not leak to a site it links to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from activities.templates import paragraphs
from web.i18n import WORDS, qualification_label

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    env.filters["local"] = local_time
    env.filters["left"] = time_left
    env.filters["business_span"] = clock_span
    env.filters["event_details"] = event_details
    env.filters["event_refs"] = event_refs
    env.globals["qualification_label"] = qualification_label
    return env


def render(name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = environment().get_template(name).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


# Shown apart (the body, subject and attachments) or as links (stored texts), or of no
# use to a reader (digests of idempotency keys and bodies).
_SHOWN_APART = frozenset({"body", "subject", "attachments", "key_digest", "request_digest"})
_REF_LABELS = {
    "body_ref": "The whole message",
    "full_body_ref": "The whole message, quotes included",
    "raw_ref": "The original email (.eml)",
    "description_ref": "The whole description",
}


def event_details(event: Any) -> list[tuple[str, str]]:
    """An event's other data, as label and text: lists joined, nothing nested shown raw."""
    found = []
    for key, value in event.data.items():
        if key in _SHOWN_APART or key.endswith("_ref") or value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            text = ", ".join(str(item) for item in value if not isinstance(item, dict))
        elif isinstance(value, dict):
            continue
        else:
            text = str(value)
        if text:
            found.append((key.replace("_", " ").capitalize(), text))
    return found


def event_refs(event: Any) -> list[tuple[str, str]]:
    """The stored texts an event names, as link label and SHA-256."""
    return [
        (_REF_LABELS.get(key, key.removesuffix("_ref").replace("_", " ").capitalize()), value)
        for key, value in event.data.items()
        if key.endswith("_ref") and isinstance(value, str)
    ]


def local_time(moment: datetime | None, timezone: str, language: str = "en") -> str:
    if moment is None:
        return "-"
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%d/%m/%Y %H:%M" if language == "pt-BR" else "%Y-%m-%d %H:%M")


def time_left(moment: datetime | None, language: str = "en", now: datetime | None = None) -> str:
    """ "in 2 days 3 h", "in 40 min", "3 h overdue" (or in Portuguese): rounded to what a
    person reads."""
    if moment is None:
        return ""
    delta = moment - (now or datetime.now(UTC))
    words = _span(abs(delta), language)
    if language == "pt-BR":
        return f"atrasado {words}" if delta < timedelta(0) else f"em {words}"
    return f"{words} overdue" if delta < timedelta(0) else f"in {words}"


def clock_span(seconds: float, business: bool) -> str:
    """An SLA clock's time left: "3 h 20 min of business time", "40 min over". Business
    time is told in hours, never days (a business day is not 24 hours)."""
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    words = (f"{hours} h" + (f" {minutes} min" if minutes else "")) if hours else f"{minutes} min"
    kind = " of business time" if business else ""
    return f"{words} over" if seconds < 0 else f"{words}{kind}"


def _span(delta: timedelta, language: str) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        unit = (
            ("dia" if days == 1 else "dias")
            if language == "pt-BR"
            else ("day" if days == 1 else "days")
        )
        return f"{days} {unit}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{max(minutes, 1)} min"


class PageRateLimited(Exception):
    """Too many page requests from one session, link or address (a 429 page)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def rate_limited_page(retry_after: int) -> HTMLResponse:
    page = render(
        "rate_limited.html.j2",
        429,
        lang="en",
        retry_after=retry_after,
    )
    page.headers["Retry-After"] = str(retry_after)
    return page


def customer_not_found_page() -> HTMLResponse:
    """The one page for every customer link that does not read, in every language the
    pages speak: even the language must not tell which ticket a link names."""
    return render("customer/not_found.html.j2", 404, lang="en", w=WORDS["en"], languages=WORDS)


def console_problem_page(status_code: int, title: str, message: str) -> HTMLResponse:
    return render(
        "console/problem.html.j2", status_code, title=title, message=message, session=None
    )


def page_for_failure(path: str, status_code: int) -> HTMLResponse | None:
    """The page a browser gets for a failure under the pages' paths (an address that is
    not a page, a mangled link); None elsewhere: the API answers JSON."""
    if path.startswith("/c/"):
        return customer_not_found_page()
    if not (path == "/console" or path.startswith("/console/")):
        return None
    if status_code == 422:
        return console_problem_page(
            422,
            "Not understood",
            "The form or the address could not be read; go back and try again.",
        )
    if status_code in (404, 405):
        return console_problem_page(404, "Page not found", "There is no such page in the console.")
    return None
