"""The parser and classifier over realistic mail: the project's corpus, and (when the
folder is there) real messages from public mail projects' test suites.

``tests/mail/corpus/`` was written for Tramita: replies from Gmail, Outlook, Apple Mail
and Thunderbird in Portuguese and English, HTML-only mail, ISO-8859-1 and windows-1252,
RFC 2047 subjects, attachments and an inline image, a forward, out-of-office replies
from several vendors, bounces from several MTAs, list and bulk mail. Each row says what
a help desk must make of it: its kind, the text the timeline shows, its attachments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mail.classify import classify
from mail.parsing import parse
from mail.quotes import new_text

CORPUS = Path(__file__).parent / "corpus"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "mail-corpus"
OWN_DOMAIN = "tramita.test"


@dataclass(frozen=True)
class Expected:
    kind: str
    text: str = ""
    """The new text the timeline shows (humans only)."""
    attachments: tuple[tuple[str, str], ...] = ()
    subject: str | None = None
    bounced: tuple[str, ...] = ()
    permanent: bool = True
    answers: tuple[str, ...] = field(default=())


REPLY_IDS = ("<ticket-TICKET.4@tramita.test>",)

EXPECTED: dict[str, Expected] = {
    "gmail-reply-pt.eml": Expected(
        "human",
        'Segue o arquivo XML da nota. O erro aparece ao clicar em "Emitir".\n\nObrigado,\nJoão',
        answers=REPLY_IDS,
    ),
    "gmail-reply-en.eml": Expected(
        "human", "The fire is out, but the printer still shows error E-42.\n\nJane"
    ),
    "outlook-reply-pt.eml": Expected(
        "human",
        "Bom dia,\n\nO certificado foi renovado ontem. A emissão continua falhando com o erro "
        "“500”.\n\nAtenciosamente,\nJoão",
    ),
    "outlook-reply-en.eml": Expected(
        "human", "Hi,\n\nReplaced the toner. Works now, thanks!\n\nJane"
    ),
    "apple-mail-reply-en.eml": Expected(
        "human", "It happened again this morning, right after the update."
    ),
    "thunderbird-bottom-reply-pt.eml": Expected(
        "human", "Enviei o XML pelo portal, no protocolo 2026-1130.\n\nJoão"
    ),
    "html-only-request.eml": Expected(
        "human",
        "Bom dia,\n\nDesde as 7h o sistema mostra:\nErro 503 – serviço indisponível\n\n"
        "  * Filial Centro\n  * Filial Norte\n\n"
        "Veja o [painel de status](https://status.empresa.com.br/incidentes/42).",
    ),
    "iso-8859-1-request.eml": Expected(
        "human",
        'O relatório de comissões não abre desde ontem.\nA mensagem é: "ação não permitida".',
        subject="Relatório não abre",
    ),
    "windows-1252-request.eml": Expected(
        "human",
        "A fatura de novembro veio com o valor de € 120,00 duas vezes – o “plano anual” foi "
        "cobrado em dobro.",
        subject="Cobrança em duplicidade",
    ),
    "rfc2047-utf8-subject.eml": Expected(
        "human",
        "Meu usuário foi bloqueado após três tentativas.",
        subject="🔥 Urgente: acesso bloqueado",
    ),
    "attachments-inline-image.eml": Expected(
        "human",
        "See the screenshot below and the log attached.\n\n[image: screenshot.png]",
        attachments=(
            ("screenshot.png", "image/png"),
            ("relatório de erros.pdf", "application/pdf"),
        ),
    ),
    "forwarded-request-pt.eml": Expected(
        "human",
        "Podem verificar? Recebi isto do financeiro.\n\n---------- Forwarded message ---------\n"
        "De: Financeiro <financeiro@empresa.com.br>\nDate: seg., 30 de nov. de 2026 às 11:40\n"
        "Subject: Nota rejeitada pela SEFAZ\nTo: Maria Oliveira <maria@empresa.com.br>\n\n"
        "A nota 1234 foi rejeitada com o código 539 (duplicidade).",
    ),
    "ooo-exchange-pt.eml": Expected("auto_reply"),
    "ooo-gmail-vacation-en.eml": Expected("auto_reply"),
    "ooo-zimbra.eml": Expected("auto_reply"),
    "autoreply-x-autoreply.eml": Expected("auto_reply"),
    "bounce-postfix-dsn.eml": Expected("bounce", bounced=("contato-errado@example.com",)),
    "bounce-exim.eml": Expected("bounce", bounced=("antigo@example.net",)),
    "bounce-exchange-ndr.eml": Expected("bounce", bounced=("ninguem@empresa.com",)),
    "bounce-gmail.eml": Expected("bounce", bounced=("naoexiste@gmail.com",)),
    "bounce-delay-warning.eml": Expected("bounce", bounced=("lento@example.org",), permanent=False),
    "list-mail.eml": Expected("bulk"),
    "newsletter-bulk.eml": Expected("bulk"),
}


def test_every_fixture_has_its_expectation() -> None:
    assert {path.name for path in CORPUS.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_message_is_read_as_a_help_desk_must(name: str) -> None:
    expected = EXPECTED[name]
    mail = parse((CORPUS / name).read_bytes())
    found = classify(mail, own_domain=OWN_DOMAIN)
    assert found.kind == expected.kind, found.reason
    assert mail.sender and "@" in mail.sender
    if expected.subject is not None:
        assert mail.subject == expected.subject
    if expected.kind == "human":
        assert new_text(mail.text, mail.subject) == expected.text
        assert [(a.filename, a.content_type) for a in mail.attachments] == list(
            expected.attachments
        )
        assert all(a.data for a in mail.attachments)
    if expected.answers:
        assert mail.thread_ids == expected.answers
    if expected.kind == "bounce":
        assert found.bounce is not None
        assert found.bounce.recipients == expected.bounced
        assert found.bounce.permanent is expected.permanent
        assert "<ticket-TICKET.4@tramita.test>" in found.bounce.original_ids, "its ticket"


def _shared_kind(path: Path) -> str:
    words = path.stem.split("-")[1:]
    if "autoreply" in words:
        return "auto_reply"
    if "bounce" in words:
        return "bounce"
    if "bulk" in words:
        return "bulk"
    return "human"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/mail-corpus is not in this clone")
@pytest.mark.parametrize(
    "path", sorted(SHARED.glob("*.eml")) if SHARED.is_dir() else [], ids=lambda p: p.name
)
def test_real_mail_from_public_projects(path: Path) -> None:
    """Each message's file name says its kind (its README); the parser never fails."""
    mail = parse(path.read_bytes())
    found = classify(mail, own_domain=OWN_DOMAIN)
    assert found.kind == _shared_kind(path), found.reason
    if found.kind == "human":
        assert new_text(mail.text, mail.subject) or mail.attachments or not mail.text
    if found.kind == "bounce" and "office365" not in path.name:
        assert found.bounce is not None and found.bounce.recipients, "names who failed"
