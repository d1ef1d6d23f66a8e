"""``GET /api/v1/feeds``: which vulnerability feeds are imported, their versions and hashes.

Feeds are global reference data (not unit data), so any signed-in user may list them; importing is
a server-side command (``khien feeds import``), never an upload over the API.
"""

from __future__ import annotations

from fastapi import APIRouter

from collector.deps import CurrentUser, SessionDep
from collector.vulns import service as feeds
from collector.vulns.models import FeedPublic

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])


@router.get("")
def list_feeds(session: SessionDep, _user: CurrentUser, include_replaced: bool = False) -> dict:
    return {"items": [FeedPublic.model_validate(f.model_dump())
                      for f in feeds.list_feeds(session, include_replaced=include_replaced)]}
