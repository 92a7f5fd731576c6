"""Release publication: every ticket waiting for that version goes to customer validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import TicketsDep, require
from api.principal import Principal
from api.routes.commands import READ_ERRORS
from api.schemas import ReleasePublished

# A version: no quotes, slashes or control characters (it goes into a visibility query).
VersionPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[^'\"\\/\x00-\x1f\x7f]+$",
        examples=["8.4.2"],
    ),
]

router = APIRouter(prefix="/releases", tags=["releases"])

PublisherDep = Annotated[Principal, Depends(require("system", "supervisor"))]


@router.post("/{version}/publish", responses=READ_ERRORS, summary="A release shipped")
async def publish_release(
    version: VersionPath,
    principal: PublisherDep,
    tickets: TicketsDep,
) -> ReleasePublished:
    """Moves every ticket waiting for ``version`` to customer validation; returns their ids."""
    moved = await tickets.publish_release(version, actor=principal.subject)
    return ReleasePublished(version=version, ticket_ids=moved)
