"""``/api/whoami``: the calling key as the collector sees it."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends

from ..auth import Principal, Role, require
from ..models import KeyView

router = APIRouter(prefix="/api", tags=["keys"])


@router.get("/whoami", response_model=KeyView)
async def whoami(principal: Annotated[Principal, Depends(require(*get_args(Role)))]) -> KeyView:
    """The calling key's name, tenant and roles, whichever roles it holds."""
    return KeyView(name=principal.name, tenant=principal.tenant, roles=sorted(principal.granted))
