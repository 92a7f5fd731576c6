"""The SMTP password never goes out in clear text when TLS is on offer (finding 4).

Real aiosmtpd servers on loopback, one offering STARTTLS with a certificate from a test
CA (trustme), one offering none; each records whether AUTH came over TLS.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.email import InsecureMailServer, SmtpMailSender
from tests.support.smtp import free_port

USER, PASSWORD = "tramita", "mail-password-in-test"


@dataclass
class AuthRecorder:
    """Accepts our user, and records whether each AUTH arrived over TLS."""

    logins: list[bool] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append(session.ssl is not None)
        ok = isinstance(data, LoginPassword) and data.login == USER.encode()
        return AuthResult(success=ok and data.password == PASSWORD.encode())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@dataclass
class MailServer:
    port: int
    recorder: AuthRecorder
    controller: Controller


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def serve(recorder: AuthRecorder, tls: ssl.SSLContext | None) -> MailServer:
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=recorder,
        # Let a plain-text AUTH through, so a leak would show instead of being refused.
        auth_require_tls=False,
        tls_context=tls,
    )
    controller.start()
    return MailServer(port, recorder, controller)


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[MailServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = serve(AuthRecorder(), context)
    yield server
    server.controller.stop()


@pytest.fixture
def plain_server() -> Iterator[MailServer]:
    server = serve(AuthRecorder(), None)
    yield server
    server.controller.stop()


def a_message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "t@x.test", "c@x.test", "hi"
    message.set_content("hello")
    return message


async def test_credentials_go_over_tls_whenever_the_server_offers_it(
    starttls_server: MailServer, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    sender = SmtpMailSender(  # the defaults: upgrade when offered
        host="127.0.0.1",
        port=starttls_server.port,
        username=USER,
        password=PASSWORD,
        ca_file=str(bundle),
    )
    await sender.send(a_message())
    assert starttls_server.recorder.logins == [True]
    assert len(starttls_server.recorder.messages) == 1


async def test_production_refuses_to_send_credentials_without_tls(
    plain_server: MailServer,
) -> None:
    sender = SmtpMailSender(
        host="127.0.0.1",
        port=plain_server.port,
        username=USER,
        password=PASSWORD,
        credentials_need_tls=True,
    )
    with pytest.raises(InsecureMailServer):
        await sender.send(a_message())
    assert plain_server.recorder.logins == [], "no AUTH was sent"
    assert plain_server.recorder.messages == []


async def test_development_may_use_a_plain_local_catcher(plain_server: MailServer) -> None:
    sender = SmtpMailSender(
        host="127.0.0.1", port=plain_server.port, username=USER, password=PASSWORD
    )
    await sender.send(a_message())
    assert plain_server.recorder.logins == [False]
