"""Business keys and event ids that look like the real systems' and repeat for the same seed.

Real integrations see sequential record numbers (``OPP-104233``, ``SO-88812``, ``CASE-55102``): each
system numbers its records in creation order, with gaps where other teams created records in
between. The simulator imitates that, so keys of later transactions are larger, like in the real
systems, and draws every number from a seeded ``random.Random`` so a seed gives the same stream.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

# Where each kind of record number starts, and how many digits it has: close to real-world shapes.
_NUMBERING: dict[str, tuple[int, int]] = {
    "OPP": (100_000, 6),  # Salesforce opportunity (autonumber)
    "ACC": (20_000, 5),  # Salesforce account
    "CASE": (50_000, 5),  # Zendesk ticket / ServiceNow case
    "SO": (80_000, 5),  # NetSuite sales order
    "CUST": (30_000, 5),  # NetSuite customer (entity id)
    "INV": (400_000, 6),  # Stripe / Zuora invoice number
    "CM": (7_000, 5),  # NetSuite credit memo
    "Q": (60_000, 5),  # CPQ quote
    "TX": (1, 6),  # workflows the simulator has no script for
}

_COMPANY_FIRST = (
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Adatum", "Litware", "Proseware", "Wingtip",
    "Lucerne", "Fourth Coffee", "Alpine", "Blue Yonder", "Coho", "Humongous", "Margie's", "Trey",
    "Woodgrove", "Graphic Design", "Wide World", "Southridge", "Relecloud", "Bellows", "Datum", "Vanarsdel",
)  # fmt: skip
_COMPANY_SECOND = (
    "Logistics", "Health", "Energy", "Retail", "Media", "Insurance", "Analytics", "Foods",
    "Manufacturing", "Travel", "Bank", "Pharma", "Telecom", "Labs", "Robotics", "Freight",
)  # fmt: skip
_COMPANY_SUFFIX = ("Inc.", "Ltd", "GmbH", "SA", "BV", "plc", "LLC", "AG")


@dataclass
class KeyFactory:
    """Sequential record numbers per prefix, starting at a seeded offset and leaving seeded gaps."""

    rng: random.Random
    _next: dict[str, int] = field(default_factory=dict)

    def next(self, prefix: str) -> str:
        start, digits = _NUMBERING.get(prefix, (1, 6))
        if prefix not in self._next:
            self._next[prefix] = start + self.rng.randrange(10 ** (digits - 1) // 2)
        number = self._next[prefix]
        self._next[prefix] = number + 1 + (self.rng.random() < 0.3) * self.rng.randrange(1, 4)
        return f"{prefix}-{number:0{digits}d}"


def event_id(rng: random.Random) -> str:
    """A UUID (version 4 layout) from the seeded generator: unique in practice, and reproducible."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def company(rng: random.Random) -> str:
    """A fictitious customer name (Microsoft's sample companies), never a real one."""
    return f"{rng.choice(_COMPANY_FIRST)} {rng.choice(_COMPANY_SECOND)} {rng.choice(_COMPANY_SUFFIX)}"


def domain_of(name: str) -> str:
    """A reserved example domain for a company (RFC 2606), for e-mail attributes the SDK redacts."""
    stem = "".join(ch for ch in name.lower().split(" ")[0] if ch.isalnum())
    return f"{stem}.example"
