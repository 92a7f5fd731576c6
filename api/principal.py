"""Who is calling: the subject and role of the API key (or session) behind a request."""

from __future__ import annotations

from dataclasses import dataclass

from config import Role

STAFF: tuple[Role, ...] = ("agent", "supervisor", "robot")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    @property
    def is_requester(self) -> bool:
        return self.role == "requester"
