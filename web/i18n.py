"""The customer page's words, in each language a profile speaks (the console is in
English; its tickets' labels come from their profiles)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "page_title": "Your ticket",
        "ticket": "Ticket",
        "status": "Status",
        "opened": "Opened",
        "updated": "Last update",
        "closes": "Closes by itself",
        "handled_by": "Handled by",
        "history": "History",
        "you": "You",
        "support": "Support",
        "reply": "Reply",
        "reply_help": "Add information or answer a question; the team sees it at once.",
        "send": "Send",
        "survey": "How did we do?",
        "survey_help": "Rate the service from 1 (poor) to 5 (excellent). You can change "
        "your answer until the ticket closes.",
        "score": "Rating",
        "comment": "Comment (optional)",
        "rate": "Send rating",
        "rated": "Your rating",
        "qualification": "Qualification",
        "qualification_help": "As an accredited partner, you may review how this ticket "
        "is qualified while it is in validation.",
        "qualify": "Save qualification",
        "closed": "This ticket is closed. It can no longer change.",
        "follow_up": "Open a new ticket about this",
        "follow_up_title": "Title",
        "follow_up_description": "What do you need?",
        "open": "Open ticket",
        "attachments": "Attachments",
        "done": "Thank you: it was recorded.",
        "problem": "It could not be done",
        "not_found": "This link is not valid. It may have expired or been mistyped; the "
        "latest email about your ticket has a fresh one.",
        "not_found_title": "Page not found",
        "reply_sent": "Thank you: your message was added to the ticket.",
        "rated_done": "Thank you for your rating.",
        "qualified_done": "The qualification was saved.",
        "follow_up_opened": "Your new ticket was opened; this is its page.",
        "not_now": "This cannot be done any more: the ticket has changed. The page now "
        "shows where it stands.",
        "stale": "This form is out of date; please send it again from this page.",
        "unavailable": "The service is busy right now. Nothing was recorded; please try "
        "again in a minute.",
        "required": "Please fill in this field.",
        "choose_score": "Please choose a rating from 1 to 5.",
        "message": "Your message",
        "follow_up_of": "This ticket follows up on an earlier one.",
        "reviewed": "Current qualification",
        "unsent": "What you wrote (not sent):",
        "times_in": "Times are in",
    },
    "pt-BR": {
        "page_title": "Seu chamado",
        "ticket": "Chamado",
        "status": "Situação",
        "opened": "Aberto em",
        "updated": "Última atualização",
        "closes": "Fecha automaticamente",
        "handled_by": "Atendido por",
        "history": "Histórico",
        "you": "Você",
        "support": "Suporte",
        "reply": "Responder",
        "reply_help": "Envie informações ou responda a uma pergunta; a equipe vê na hora.",
        "send": "Enviar",
        "survey": "Como foi o atendimento?",
        "survey_help": "Avalie de 1 (ruim) a 5 (excelente). Você pode mudar a resposta "
        "até o chamado ser fechado.",
        "score": "Nota",
        "comment": "Comentário (opcional)",
        "rate": "Enviar avaliação",
        "rated": "Sua avaliação",
        "qualification": "Qualificação",
        "qualification_help": "Como parceiro credenciado, você pode revisar a qualificação "
        "deste chamado enquanto ele está em validação.",
        "qualify": "Salvar qualificação",
        "closed": "Este chamado está fechado e não pode mais ser alterado.",
        "follow_up": "Abrir um novo chamado sobre este assunto",
        "follow_up_title": "Título",
        "follow_up_description": "Do que você precisa?",
        "open": "Abrir chamado",
        "attachments": "Anexos",
        "done": "Obrigado: registrado.",
        "problem": "Não foi possível",
        "not_found": "Este link não é válido. Pode ter expirado ou sido digitado errado; o "
        "último e-mail sobre o seu chamado traz um link novo.",
        "not_found_title": "Página não encontrada",
        "reply_sent": "Obrigado: sua mensagem foi adicionada ao chamado.",
        "rated_done": "Obrigado pela avaliação.",
        "qualified_done": "A qualificação foi salva.",
        "follow_up_opened": "Seu novo chamado foi aberto; esta é a página dele.",
        "not_now": "Isto não pode mais ser feito: o chamado mudou. A página mostra agora "
        "a situação atual.",
        "stale": "Este formulário está desatualizado; envie de novo a partir desta página.",
        "unavailable": "O serviço está ocupado no momento. Nada foi registrado; tente de "
        "novo em um minuto.",
        "required": "Preencha este campo.",
        "choose_score": "Escolha uma nota de 1 a 5.",
        "message": "Sua mensagem",
        "follow_up_of": "Este chamado dá continuidade a um anterior.",
        "reviewed": "Qualificação atual",
        "unsent": "O que você escreveu (não enviado):",
        "times_in": "Horários em",
    },
}


# The qualifications as a consultant or channel reads them on the customer page.
QUALIFICATIONS: dict[str, dict[str, str]] = {
    "en": {
        "undefined_lack_of_info": "Undefined for lack of information",
        "solved": "Solved",
        "product_defect": "Product defect",
        "usage_question": "Usage question",
        "configuration": "Configuration",
        "improvement_request": "Improvement request",
        "not_applicable": "Not applicable",
    },
    "pt-BR": {
        "undefined_lack_of_info": "Indefinida por falta de informação (HD1)",
        "solved": "Solucionado",
        "product_defect": "Defeito do produto",
        "usage_question": "Dúvida de uso",
        "configuration": "Configuração",
        "improvement_request": "Solicitação de melhoria",
        "not_applicable": "Não se aplica",
    },
}


def qualification_label(value: str, language: str) -> str:
    return QUALIFICATIONS.get(language, QUALIFICATIONS["en"]).get(value, value.replace("_", " "))


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])
