"""Reading the web pages as a browser would, for the HTTP-level tests."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.smtp import Received

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency" value="([^"]+)"')
CUSTOMER_LINK = re.compile(r"https?://[^\s\"<>]+(/c/[A-Za-z0-9_.\-]+)")


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


def customer_path_of(mail: Received) -> str:
    """The customer page's path, from the link in the text of a mail Tramita sent."""
    found = CUSTOMER_LINK.search(mail.text)
    assert found, f"no customer link in:\n{mail.text}"
    return found.group(1)


async def sign_in(web: httpx.AsyncClient, key: str = "dev-agent-key") -> str:
    """Sign in through the form; the client keeps the session cookie. The session's CSRF
    token (as every console page's forms carry it)."""
    form = await web.get("/console/sign-in")
    assert form.status_code == 200, form.text
    answer = await web.post(
        "/console/sign-in", data={"key": key, "csrf": csrf_of(form.text), "next": "/console/"}
    )
    assert answer.status_code == 303, answer.text
    queue = await web.get("/console/")
    assert queue.status_code == 200, queue.text
    return csrf_of(queue.text)


def text_of(page: str) -> str:
    """The page's visible text, roughly: tags dropped, entities read."""
    without_scripts = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", without_scripts))
