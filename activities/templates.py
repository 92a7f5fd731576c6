"""Email templates: per language, a text and an HTML version, rendered with Jinja2.

``activities/mail_templates/<language>/<name>.{subject,txt,html}.j2``; a name without a
subject template takes the subject it is given (an agent's email). HTML is escaped by
default (a ticket's text can never inject markup); ``paragraphs`` turns a plain text
into HTML paragraphs. Every email starts with a "reply above this line" marker, which
the inbound parser cuts at, so a reply's quote never reaches the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from mail.quotes import REPLY_ABOVE

TEMPLATES = Path(__file__).parent / "mail_templates"
LANGUAGES = ("pt-BR", "en")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def paragraphs(text: str) -> Markup:
    """Plain text as HTML: blank lines make paragraphs, line breaks stay; all escaped."""
    blocks = [block for block in str(text).replace("\r\n", "\n").split("\n\n") if block.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(
            Markup("<br>\n").join(escape(line) for line in block.split("\n"))
        )
        for block in blocks
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


def render(name: str, language: str, values: dict[str, Any]) -> RenderedMail:
    """The email ``name`` in ``language`` (English when there is none in it)."""
    language = language if (TEMPLATES / language).is_dir() else "en"
    env = environment()
    context = {"marker": REPLY_ABOVE.get(language, REPLY_ABOVE["en"]), "language": language}
    context.update(values)
    subject_file = f"{language}/{name}.subject.j2"
    if (TEMPLATES / subject_file).exists():
        subject = env.get_template(subject_file).render(context)
    else:
        subject = str(values["subject"])
    context["subject"] = " ".join(subject.split())
    return RenderedMail(
        subject=context["subject"],
        text=env.get_template(f"{language}/{name}.txt.j2").render(context).strip() + "\n",
        html=env.get_template(f"{language}/{name}.html.j2").render(context),
    )
