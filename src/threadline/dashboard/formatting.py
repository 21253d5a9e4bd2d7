"""How the dashboard writes numbers, money, durations and times for people ("3h 12m", "2h ago").

One place, so that a figure reads the same on every page, and tests can compare what a person sees
with what the API answered by formatting the API's value the same way.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DASH = "—"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def chart_text(sent: str) -> str:
    """Text an integration sent (a step, a system, a message), as a Plotly chart must be given it.

    Plotly reads trace names, tick labels, point labels, hover text and annotations as a subset of
    HTML, so a step named ``<a href=...>`` would become a link: escaped, it shows as typed. Quotes
    stay as they are (outside a tag they are only text, and Plotly shows ``&quot;`` literally).
    """
    return html.escape(sent, quote=False)


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 time from the API (``...Z``) as an aware datetime."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def zone(name: str | None) -> dt.tzinfo:
    """The browser's time zone by IANA name; UTC when unknown."""
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def duration(seconds: float | None, parts: int = 2) -> str:
    """A span of time in its two largest units: "45s", "3h 12m", "2d 4h"; under a second in ms."""
    if seconds is None or math.isnan(seconds):
        return DASH
    if seconds < 0:
        return "-" + duration(-seconds, parts)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    remaining = round(seconds)
    pieces: list[str] = []
    for unit, size in _UNITS:
        if remaining >= size or (unit == "s" and not pieces):
            amount, remaining = divmod(remaining, size)
            pieces.append(f"{amount}{unit}")
        elif pieces:
            pieces.append("")  # a zero unit ends the run: "2h 0m 5s" reads as "2h"
        if len(pieces) == parts:
            break
    return " ".join(piece for piece in pieces if piece)


def milliseconds(value: float | None) -> str:
    """A latency: "85 ms", "1.2 s", "2m 5s"."""
    if value is None or math.isnan(value):
        return DASH
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return duration(value / 1000)


def ago(moment: dt.datetime | str | None, now: dt.datetime) -> str:
    """How long before ``now``: "just now", "12m ago", "3h 5m ago"; future times as "in 5m"."""
    moment = parse_time(moment) if isinstance(moment, str) else moment
    if moment is None:
        return DASH
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 45:
        return "just now"
    if seconds < 0:
        return f"in {duration(-seconds)}"
    return f"{duration(seconds)} ago"


def clock(moment: dt.datetime | str | None, tz: dt.tzinfo, now: dt.datetime | None = None) -> str:
    """A time of day, with the date when it is not today: "14:05:12", "24 Nov 14:05", "3 Jan 2025"."""
    moment = parse_time(moment) if isinstance(moment, str) else moment
    if moment is None:
        return DASH
    local = moment.astimezone(tz)
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    if local.year == today.year:
        return f"{local.day} {local:%b %H:%M}"
    return f"{local.day} {local:%b %Y %H:%M}"


def full_time(moment: dt.datetime | str | None, tz: dt.tzinfo) -> str:
    """An unambiguous time for tooltips and headers: "Tue 25 Nov 2025, 14:05:12 CET"."""
    moment = parse_time(moment) if isinstance(moment, str) else moment
    if moment is None:
        return DASH
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M:%S} {local.tzname() or ''}".rstrip()


def retention(days: int | None, kept_since: dt.datetime | str | None, tz: dt.tzinfo) -> str:
    """How far back the data goes: "Data kept for 30 days, since 2026-10-28"."""
    since = parse_time(kept_since) if isinstance(kept_since, str) else kept_since
    if days is None or since is None:
        return "Data kept without a time limit"
    return f"Data kept for {plural(days, 'day')}, since {since.astimezone(tz):%Y-%m-%d}"


def count(value: int | None) -> str:
    """A whole number with thousands separators."""
    return DASH if value is None else f"{value:,}"


def plural(value: int, noun: str) -> str:
    """A count with its noun: "1 step", "3 steps", "1,200 transactions" (regular plurals only)."""
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage: 0.6667 -> "66.7%"; whole numbers lose the decimals ("100%")."""
    if value is None or math.isnan(value):
        return DASH
    text = f"{value * 100:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def money(amount: float | None, currency: str | None, compact: bool = False) -> str:
    """An amount in its currency: "$48,000", "€12,500.50", "1,200 CHF"; compact: "$1.2M", "€755.6K"."""
    if amount is None:
        return DASH
    if compact and abs(amount) >= 10_000:
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(amount) >= size:
                number = f"{amount / size:.1f}".removesuffix(".0") + suffix
                break
    else:
        number = f"{amount:,.0f}" if amount == int(amount) else f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency or "")
    if symbol:
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {currency}" if currency else number


def state_label(state: str) -> str:
    """A transaction or step state as a person says it: "in_progress" -> "In progress"."""
    return state.replace("_", " ").capitalize()
