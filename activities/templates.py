"""Customer email templates per language. The support desk writes in Brazilian Portuguese."""

from __future__ import annotations

from datetime import datetime
from string import Template

from workflows.models import SendEmailEffect

_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "pt-BR": {
        "customer_wait_reminder": (
            "Lembrete: aguardamos sua resposta - $title",
            "Olá,\n\n"
            "O chamado $ticket ($title) está aguardando a sua resposta com as informações "
            "solicitadas pelo Suporte.\n\n"
            "Este é o lembrete $number de $total. Se não recebermos retorno, o chamado será "
            "fechado automaticamente em $closes_at, com a qualificação "
            '"Indefinida por falta de informação".\n\n'
            "Basta responder a este e-mail para dar continuidade ao atendimento.\n\n"
            "Atenciosamente,\nEquipe de Suporte\n",
        ),
        "validation_reminder": (
            "Lembrete: valide a solução do seu chamado - $title",
            "Olá,\n\n"
            "O Suporte informou a solução do chamado $ticket ($title) e aguarda a sua "
            "validação.\n\n"
            "Este é o lembrete $number de $total. A pesquisa de satisfação está disponível "
            "enquanto o chamado estiver em validação. Sem retorno, o chamado será fechado "
            "automaticamente em $closes_at.\n\n"
            "Se a solução não resolveu o problema, basta responder a este e-mail.\n\n"
            "Atenciosamente,\nEquipe de Suporte\n",
        ),
    },
    "en": {
        "customer_wait_reminder": (
            "Reminder: we are waiting for your reply - $title",
            "Hello,\n\n"
            "Ticket $ticket ($title) is waiting for the information we asked you for.\n\n"
            "This is reminder $number of $total. Without an answer the ticket will be closed "
            "on $closes_at.\n\n"
            "Just reply to this email to continue.\n\nKind regards,\nService team\n",
        ),
        "validation_reminder": (
            "Reminder: please confirm the resolution - $title",
            "Hello,\n\n"
            "Ticket $ticket ($title) was resolved and is waiting for your confirmation.\n\n"
            "This is reminder $number of $total. Without an answer the ticket will be closed "
            "on $closes_at.\n\n"
            "If the problem is not solved, just reply to this email.\n\n"
            "Kind regards,\nService team\n",
        ),
    },
}


def render_template(
    email: SendEmailEffect,
    *,
    language: str,
    ticket_id: str,
    title: str | None,
    closes_at_local: datetime | None,
) -> tuple[str, str]:
    """Subject and plain-text body of a templated email."""
    if email.template is None:
        raise ValueError("render_template needs an email with a template")
    subject, body = _TEMPLATES[language][email.template]
    date_format = "%d/%m/%Y %H:%M" if language == "pt-BR" else "%Y-%m-%d %H:%M"
    values = {
        "ticket": f"#{ticket_id}",
        "title": title or ticket_id,
        "number": str(email.reminder_number or 1),
        "total": str(email.reminder_total or 1),
        "closes_at": closes_at_local.strftime(date_format) if closes_at_local else "-",
    }
    return Template(subject).substitute(values), Template(body).substitute(values)
