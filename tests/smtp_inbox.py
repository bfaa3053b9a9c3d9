"""A real SMTP server for alert tests (aiosmtpd on 127.0.0.1 and a free port): the messages
it received, parsed, and the Apprise URL that sends to it."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

TO = "oncall@example.org"


@dataclass
class Inbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=newsrec@localhost&to={TO}"

    def texts(self) -> list[str]:
        """Subject and plain-text body of each message."""
        out = []
        for m in self.messages:
            part = m.get_body(preferencelist=("plain",))
            out.append(f"{m['Subject']}\n{part.get_content() if part else ''}")
        return out


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.inbox.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    inbox = Inbox(free_port())
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
