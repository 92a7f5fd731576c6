"""One parser for every inbound path: raw RFC 5322 bytes in, an :class:`InboundMail` out.

The standard library's ``email`` package (``policy.default``) decodes headers (RFC
2047, RFC 2231 file names) and charsets; a part in an unknown or lying charset is read
as UTF-8, else Latin-1, never refused. The text part is preferred; an HTML-only mail is
turned into text by ``inscriptis`` (layout-aware: lists, tables, line breaks and link
addresses survive). Every other part is an attachment: inline images and attached
messages included, each with a file name (its own, or one made from its type).
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.feedparser import BytesFeedParser
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_LINK_TEXT = ParserConfig(display_links=True)
_HREF_BREAKS = re.compile(r"""(href\s*=\s*["'])([^"']*)""", re.IGNORECASE)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False


@dataclass(frozen=True)
class InboundMail:
    raw: bytes
    message_id: str
    """As the message gives it (``<...>``), or made from the digest of the raw message."""
    sender: str | None
    """The From address, as written; None when there is none that parses."""
    sender_name: str | None
    subject: str
    """Decoded, on one line."""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: datetime | None = None
    text: str = ""
    """The whole text: the text part, else the HTML part as text."""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    """Every header once, by lower-case name (several of a name joined by newlines)."""
    message: EmailMessage | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this message answers, the nearest first."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


# The header registry's objects are immutable and its parse is the parser's largest cost:
# the email package parses a header again each time it is read (a part's Content-Type
# several times per message), and most values recur from message to message. Remembered
# by name and value; long values (References, DKIM signatures) are parsed each time.
_REGISTRY = HeaderRegistry()
_REMEMBERED_VALUE_CHARS = 400


@functools.lru_cache(maxsize=1024)
def _remembered_header(name: str, value: str) -> BaseHeader:
    return _REGISTRY(name, value)


def _header(name: str, value: str) -> BaseHeader:
    if len(value) > _REMEMBERED_VALUE_CHARS:
        return _REGISTRY(name, value)
    return _remembered_header(name, value)


POLICY = policy.default.clone(header_factory=_header)
"""``policy.default``, its header objects remembered."""
_FEED_BYTES = 64 * 1024


def parse(raw: bytes) -> InboundMail:
    message = _message(raw)
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        text = _header_text(value)
        headers[key] = f"{headers[key]}\n{text}" if key in headers else text
    sender, sender_name = _sender(message)
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return InboundMail(
        raw=raw,
        message_id=_message_id(headers.get("message-id", ""), raw),
        sender=sender,
        sender_name=sender_name,
        subject=" ".join(headers.get("subject", "").split()),
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        in_reply_to=tuple(MESSAGE_ID.findall(headers.get("in-reply-to", ""))),
        references=tuple(MESSAGE_ID.findall(headers.get("references", ""))),
        date=_date(message),
        text=_body_text(plain, html),
        html=_part_text(html) if html is not None else None,
        attachments=tuple(_attachments(message, bodies=(plain, html))),
        headers=headers,
        message=message,
    )


def _message(raw: bytes) -> EmailMessage:
    """The message, fed to the parser a slice at a time: ``BytesParser.parsebytes`` reads
    the whole message through a ``StringIO``, whose buffer holds four bytes a character
    (a 20 MB message cost 133 MB at its peak; fed, 32 MB)."""
    parser = BytesFeedParser(policy=POLICY)
    whole = memoryview(raw)
    for start in range(0, len(raw), _FEED_BYTES):
        parser.feed(bytes(whole[start : start + _FEED_BYTES]))
    message = parser.close()
    assert isinstance(message, EmailMessage)  # the policy's message factory
    return message


def _header_text(value: object) -> str:
    try:
        return " ".join(str(value).split())
    except Exception:  # a header the policy cannot render: keep what is readable
        return " ".join(repr(value).split())


def _message_id(value: str, raw: bytes) -> str:
    found = MESSAGE_ID.search(value)
    if found:
        return found.group(0)
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@message-without-id.tramita>"


def _sender(message: EmailMessage) -> tuple[str | None, str | None]:
    header = message.get("From")
    if header is None:
        return None, None
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    for address in addresses:
        if address.addr_spec and "@" in address.addr_spec:
            return address.addr_spec, address.display_name or None
    name, addr = parseaddr(str(header))
    return (addr, name or None) if "@" in addr else (None, name or None)


def _addresses(message: EmailMessage, name: str) -> tuple[str, ...]:
    values = [str(v) for v in message.get_all(name, [])]
    return tuple(addr for _, addr in getaddresses(values) if "@" in addr)


def _date(message: EmailMessage) -> datetime | None:
    header = message.get("Date")
    moment = getattr(header, "datetime", None)
    return moment if isinstance(moment, datetime) else None


def _part_text(part: Message) -> str:
    """A text part's content, decoded; an unknown or wrong charset never refuses it."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, KeyError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    for charset in (part.get_content_charset() or "utf-8", "utf-8", "windows-1252"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def html_to_text(html: str) -> str:
    # A browser ignores line breaks inside an href; so does the text of a link.
    joined = _HREF_BREAKS.sub(lambda m: m.group(1) + re.sub(r"[\r\n]+", "", m.group(2)), html)
    text: str = get_text(joined, _LINK_TEXT)
    return text.strip()


def _body_text(plain: Message | None, html: Message | None) -> str:
    if plain is not None:
        return _part_text(plain).replace("\r\n", "\n").strip()
    if html is not None:
        return html_to_text(_part_text(html))
    return ""


def _attachments(
    message: EmailMessage, *, bodies: tuple[Message | None, Message | None]
) -> list[Attachment]:
    """Every part but the ``bodies``: files, inline images, attached messages (each
    whole: the parts of an attached message are not listed apart)."""
    body_ids = {id(part) for part in bodies if part is not None}
    found: list[Attachment] = []

    def visit(part: Message) -> None:
        content_type = part.get_content_type()
        if content_type != "message/rfc822" and part.is_multipart():
            for child in part.get_payload():
                if isinstance(child, Message):
                    visit(child)
            return
        if id(part) in body_ids:
            return
        if content_type.startswith("text/") and part.get_content_disposition() is None:
            return  # the other half of a multipart/alternative
        data = _part_bytes(part)
        if not data:
            return
        number = len(found) + 1
        name = " ".join((part.get_filename() or "").split())
        found.append(
            Attachment(
                filename=name or _made_up_name(number, content_type),
                content_type=content_type,
                data=data,
                inline=part.get_content_disposition() == "inline",
            )
        )

    visit(message)
    return found


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        attached = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(attached, Message):
            # compat32 writes the headers back as they came: policy.default would parse
            # and fold them again, and some real ones (a malformed Message-ID) break it.
            return attached.as_bytes(policy=policy.compat32)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _made_up_name(number: int, content_type: str) -> str:
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return f"attachment-{number}{extension}"
