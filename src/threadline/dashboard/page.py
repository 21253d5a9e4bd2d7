"""What every page receives to draw itself, and what it gives back to the router."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .client import QueryClient
from .theme import Palette
from .urls import Query


@dataclass(frozen=True)
class PageContext:
    """One render of one page: the URL it is drawn for, the API to ask, and how to show times and colours."""

    client: QueryClient
    pathname: str
    query: Query
    theme: Palette
    tz: dt.tzinfo
    now: dt.datetime


@dataclass(frozen=True)
class Rendered:
    """A drawn page: its browser-tab title and its content."""

    title: str
    content: Any
