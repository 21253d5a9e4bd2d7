"""The business behind each workflow: keys, aliases, amounts, attributes, rejections, typical timing.

A scenario is the script of one workflow of ``workflows.example.yaml``: which key each system knows
the transaction by, where a new key is announced as an alias, how long each step typically takes,
what a rejection looks like, what a deal is worth. The order of steps comes from the workflow
definition itself (``after``, ``within``, ``stuck_after``), so the planner (``planner.py``) can move
any transaction through any definition; a workflow without a script here gets ``Scenario`` itself
(every event under one key, timing from ``within``).

Keys per workflow (``primary`` is the key the process starts with):

- quote-to-cash: ``OPP-`` (Salesforce). NetSuite announces its sales order ``SO-`` as the alias
  ``erp.sales_order`` on ``erp.order.created``; Stripe only knows the sales order, so billing events
  carry ``SO-`` alone and join through the alias.
- customer-onboarding: ``ACC-`` (Salesforce account). MuleSoft announces the NetSuite customer
  ``CUST-`` (``erp.customer``) when it syncs the account; NetSuite and Stripe use ``CUST-`` only.
- subscription-renewal: ``OPP-`` (renewal opportunity) → invoice ``INV-`` (``billing.invoice``,
  announced by Stripe) → sales order ``SO-`` (``erp.sales_order``, announced by MuleSoft against the
  invoice): a chain of aliases.
- support-credit: ``CASE-`` (Zendesk); NetSuite announces its credit memo ``CM-`` (``erp.credit_memo``).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from threadline.collector.workflows import WorkflowDefinition, Workflows

from . import ids
from .faults import DEFAULT_PROPORTIONS, Fault

logger = logging.getLogger("threadline.simulator")

PRIMARY = "primary"
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Route:
    """Which key an event carries (``primary`` or an alias kind) and which aliases it announces."""

    key: str = PRIMARY
    announces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deal:
    """What one transaction is about: the customer, its region and the money at stake."""

    customer: str
    region: str
    segment: str
    amount: float | None
    currency: str | None
    details: Mapping[str, str] = field(default_factory=dict)  # scenario-specific facts (plan, reason...)


@dataclass(frozen=True)
class Outcome:
    """How a step's event reports a rejection: its status, error and extra attributes."""

    status: str
    error: Mapping[str, str] | None
    attributes: Mapping[str, str]


_REGIONS = (("NA", 0.5), ("EMEA", 0.35), ("APAC", 0.15))
_SUBSIDIARY = {
    "NA": "Acme Inc. (US)",
    "EMEA": "Acme GmbH (DE)",
    "UK": "Acme Ltd (UK)",
    "APAC": "Acme Pte (SG)",
}
_FX = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}  # deal sizes are priced in the customer's currency
_TAX_PREFIXES = ("DE", "FR", "GB", "NL", "US", "SG")  # a VAT or EIN number, by country
_OWNERS = ("A. Moreau", "J. Okafor", "S. Lindqvist", "R. Tanaka", "M. Alvarez", "K. Brennan", "P. Iyer")


class Scenario:
    """A workflow's script. The base class serves any workflow: one key, timing from ``within``."""

    workflow: ClassVar[str] = ""
    weight: ClassVar[float] = 0.1  # share of new transactions, relative to the other scenarios
    primary: ClassVar[str] = "TX"  # prefix of the primary key
    aliases: ClassVar[Mapping[str, str]] = _EMPTY  # alias kind -> prefix of its record numbers
    references: ClassVar[Mapping[str, str]] = _EMPTY  # other record numbers, used in attributes only
    routes: ClassVar[Mapping[str, Route]] = MappingProxyType({})  # step -> route (default: primary)
    late_alias_routes: ClassVar[Mapping[str, Route]] = MappingProxyType({})  # routes under LATE_ALIAS
    timing: ClassVar[Mapping[str, float]] = MappingProxyType({})  # step -> median seconds from due to done
    amount_steps: ClassVar[frozenset[str]] = frozenset()  # steps whose events carry amount and currency
    amount_median: ClassVar[float | None] = None  # in USD; log-normal around it
    amount_sigma: ClassVar[float] = 0.9
    amount_bounds: ClassVar[tuple[float, float]] = (1_000.0, 750_000.0)
    amount_step: ClassVar[float] = 10.0  # rounding: prices end in tens, credits in cents
    rejections: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})  # fail step -> stands in for
    rejection_reasons: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})
    violation: ClassVar[tuple[str, str] | None] = None  # (step that runs early, the step it skips)
    mismatch_steps: ClassVar[tuple[str, ...]] = ()  # steps whose amount may disagree (``mismatched``)
    twin_steps: ClassVar[tuple[str, ...]] = ()  # steps a customer onboarded twice goes through again
    proportions: ClassVar[Mapping[Fault, float]] = DEFAULT_PROPORTIONS

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self.fail_steps = frozenset(definition.fail_on)
        self.happy_steps = tuple(s.name for s in definition.steps if s.name not in self.fail_steps)
        self._rejections = dict(self.rejections) or self._default_rejections()

    # --- what the definition allows -------------------------------------------------------------

    @classmethod
    def fits(cls, definition: WorkflowDefinition) -> list[str]:
        """Why this script does not fit ``definition`` (steps it names that it lacks); [] if it fits."""
        known = set(definition.step_names())
        named = {*cls.routes, *cls.late_alias_routes, *cls.timing, *cls.amount_steps}
        named |= {*cls.rejections} | {step for steps in cls.rejections.values() for step in steps}
        named |= set(cls.violation or ()) | set(cls.mismatch_steps) | set(cls.twin_steps)
        problems = [f"step {name!r} is not defined" for name in sorted(named - known)]
        problems += [
            f"{name!r} is not in fail_on" for name in sorted(set(cls.rejections) - set(definition.fail_on))
        ]
        return problems

    def _default_rejections(self) -> dict[str, tuple[str, ...]]:
        """A fail step stands in for any step that comes after all of its own prerequisites."""
        found: dict[str, tuple[str, ...]] = {}
        for name in self.fail_steps:
            step = self.definition.step(name)
            assert step is not None
            later = tuple(
                s
                for s in self.happy_steps[1:]
                if set(step.after) <= (self.definition.predecessors(s) | {s}) and s not in step.after
            )
            if later:
                found[name] = later
        return found

    def supported_faults(self) -> frozenset[Fault]:
        faults = {Fault.TRANSIENT, Fault.DUPLICATE}
        if len(self.happy_steps) >= 2:
            faults |= {Fault.STUCK, Fault.OUT_OF_ORDER}
        if self._rejections:
            faults.add(Fault.REJECTION)
        if self.violation is not None:
            faults.add(Fault.VIOLATION)
        if self.late_alias_routes:
            faults.add(Fault.LATE_ALIAS)
        if self.mismatch_steps and self.amount_median is not None:
            faults.add(Fault.MISMATCH)
        if self.twin_steps:
            faults.add(Fault.DUPLICATE_ENTITY)
        return frozenset(faults)

    def rejection_choices(self) -> Mapping[str, tuple[str, ...]]:
        return self._rejections

    # --- timing ------------------------------------------------------------------------------------

    def delay(self, step: str, rng: random.Random) -> float:
        """Seconds from when ``step`` is due to when it happens, for a transaction without incidents.

        Log-normal around the step's typical time (its ``within`` / 5 when the script has none), and
        kept under both ``within`` and ``stuck_after``: only the injected faults and slow-system
        incidents make a transaction stuck or late, so what the collector shows can be traced back.
        """
        definition = self.definition.step(step)
        within = definition.within_s if definition is not None else None
        median = self.timing.get(step) or (within / 5 if within else 600.0)
        cap = 0.85 * self.definition.stuck_after_s
        if within:
            cap = min(cap, 0.9 * within)
        return max(min(median * math.exp(rng.gauss(0, 0.6)), cap), 5.0)

    # --- keys ----------------------------------------------------------------------------------------

    def route(self, step: str, fault: Fault) -> Route:
        if fault is Fault.LATE_ALIAS and step in self.late_alias_routes:
            return self.late_alias_routes[step]
        return self.routes.get(step, Route())

    def keys(self, factory: ids.KeyFactory) -> dict[str, str]:
        """The transaction's record numbers: its primary key, its aliases, its other references."""
        keys = {PRIMARY: factory.next(self.primary)}
        for kind, prefix in {**self.aliases, **self.references}.items():
            keys[kind] = factory.next(prefix)
        return keys

    # --- business content --------------------------------------------------------------------------

    def deal(self, rng: random.Random) -> Deal:
        region = rng.choices([r for r, _ in _REGIONS], [w for _, w in _REGIONS])[0]
        currency = "USD"
        if region == "EMEA":
            currency = "GBP" if rng.random() < 0.3 else "EUR"
        amount = None
        if self.amount_median is not None:
            low, high = self.amount_bounds
            usd = min(max(self.amount_median * math.exp(rng.gauss(0, self.amount_sigma)), low), high)
            amount = round(usd * _FX[currency] / self.amount_step) * self.amount_step
            amount = round(amount, 2)
        size = amount / _FX[currency] if amount is not None else 0.0
        segment = "enterprise" if size >= 100_000 else "mid-market" if size >= 20_000 else "smb"
        return Deal(
            customer=ids.company(rng),
            region="UK" if currency == "GBP" else region,
            segment=segment,
            amount=amount,
            currency=currency if amount is not None else None,
            details=self.details(rng),
        )

    def details(self, rng: random.Random) -> dict[str, str]:
        """Scenario-specific facts of one deal, drawn once so every event tells the same story."""
        return {"owner": rng.choice(_OWNERS)}

    def attributes(
        self, step: str, deal: Deal, keys: Mapping[str, str], rng: random.Random
    ) -> dict[str, str]:
        """The attributes of ``step``'s event: what the integration would log about the record."""
        return {"customer": deal.customer, "region": deal.region}

    def mismatched(self, step: str, deal: Deal, rng: random.Random) -> tuple[float | None, str | None]:
        """The amount and currency a system that disagrees records instead of the deal's: the ERP
        books it in its ledger currency, or sends no amount at all."""
        if deal.amount is not None and deal.currency not in (None, "USD") and rng.random() < 0.6:
            return round(deal.amount / _FX[deal.currency], 2), "USD"
        return None, None

    def rejection(self, step: str, deal: Deal, rng: random.Random) -> Outcome:
        reasons = self.rejection_reasons.get(step) or ("Rejected by a business rule",)
        reason = rng.choice(reasons)
        return Outcome("error", {"kind": "business", "message": reason}, {"reason": reason})

    def subsidiary(self, deal: Deal) -> str:
        return _SUBSIDIARY[deal.region]


def _stripe_id(prefix: str, rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(rng.choice(alphabet) for _ in range(14))


class QuoteToCash(Scenario):
    workflow = "quote-to-cash"
    weight = 0.35
    primary = "OPP"
    aliases = MappingProxyType({"erp.sales_order": "SO"})
    references = MappingProxyType({"cpq.quote": "Q"})
    routes = MappingProxyType(
        {
            "erp.order.created": Route(announces=("erp.sales_order",)),
            "billing.subscription.activated": Route(key="erp.sales_order"),
        }
    )
    # The ERP integration was built before the opportunity id was passed along: NetSuite knows only
    # its own order number, and the alias arrives later, from Stripe's subscription metadata.
    late_alias_routes = MappingProxyType(
        {
            "erp.order.created": Route(key="erp.sales_order"),
            "billing.subscription.activated": Route(announces=("erp.sales_order",)),
        }
    )
    timing = MappingProxyType(
        {
            "erp.customer.validated": 180.0,
            "cpq.quote.approved": 25 * 60.0,  # a deal-desk approval: a person
            "erp.order.created": 6 * 60.0,
            "billing.subscription.activated": 12 * 60.0,
            "support.entitlement.created": 8 * 60.0,
        }
    )
    amount_steps = frozenset(
        {"crm.opportunity.won", "cpq.quote.approved", "erp.order.created", "billing.subscription.activated"}
    )
    amount_median = 24_000.0
    mismatch_steps = ("erp.order.created", "billing.subscription.activated")
    rejections = MappingProxyType({"erp.order.rejected": ("billing.subscription.activated",)})
    rejection_reasons = MappingProxyType(
        {
            "erp.order.rejected": (
                "Credit hold: customer exceeds credit limit",
                "Tax registration missing for the ship-to country",
                "Order total differs from the approved quote",
                "Subsidiary mismatch between customer and order",
            )
        }
    )

    def details(self, rng: random.Random) -> dict[str, str]:
        return {
            "owner": rng.choice(_OWNERS),
            "plan": rng.choice(("Professional annual", "Enterprise annual", "Enterprise 3-year")),
            "discount_pct": str(rng.choice((0, 5, 10, 12, 15, 20, 25))),
        }

    def mismatched(self, step: str, deal: Deal, rng: random.Random) -> tuple[float | None, str | None]:
        """Billing activates at the list price (the quote's discount lost on the way); the ERP as
        any scenario's."""
        if step == "billing.subscription.activated" and deal.amount is not None:
            discount = int(deal.details["discount_pct"]) or 10
            return round(deal.amount / (1 - discount / 100), -1), deal.currency
        return super().mismatched(step, deal, rng)

    def attributes(
        self, step: str, deal: Deal, keys: Mapping[str, str], rng: random.Random
    ) -> dict[str, str]:
        common = {"customer": deal.customer, "region": deal.region}
        match step:
            case "crm.opportunity.won":
                return {
                    **common,
                    "segment": deal.segment,
                    "owner": deal.details["owner"],
                    "stage": "Closed Won",
                }
            case "erp.customer.validated":
                return {**common, "subsidiary": self.subsidiary(deal), "credit_status": "ok"}
            case "cpq.quote.approved":
                return {"quote": keys["cpq.quote"], "discount_pct": deal.details["discount_pct"]}
            case "erp.order.created" | "erp.order.rejected":
                return {"sales_order": keys["erp.sales_order"], "subsidiary": self.subsidiary(deal)}
            case "billing.subscription.activated":
                return {"subscription": _stripe_id("sub_", rng), "plan": deal.details["plan"]}
            case "support.entitlement.created":
                return {
                    "organization": deal.customer,
                    "entitlement": "Premier Support" if deal.segment == "enterprise" else "Standard Support",
                }
        return common


class CustomerOnboarding(Scenario):
    workflow = "customer-onboarding"
    weight = 0.15
    primary = "ACC"
    aliases = MappingProxyType({"erp.customer": "CUST"})
    routes = MappingProxyType(
        {
            "middleware.account.synced": Route(announces=("erp.customer",)),
            "erp.customer.created": Route(key="erp.customer"),
            "billing.customer.created": Route(key="erp.customer"),
        }
    )
    # An older MuleSoft flow does not pass the NetSuite number back: the ERP and billing records
    # meet the account only once Salesforce shows the customer number at the kick-off.
    late_alias_routes = MappingProxyType(
        {
            "middleware.account.synced": Route(),
            "erp.customer.created": Route(key="erp.customer"),
            "billing.customer.created": Route(key="erp.customer"),
            "crm.kickoff.scheduled": Route(announces=("erp.customer",)),
        }
    )
    timing = MappingProxyType(
        {
            "middleware.account.synced": 120.0,
            "erp.customer.created": 20 * 60.0,  # credit and KYC checks
            "billing.customer.created": 5 * 60.0,
            "support.organization.created": 7 * 60.0,
            "crm.kickoff.scheduled": 50 * 60.0,  # a customer success manager books the meeting
        }
    )
    amount_steps = frozenset({"crm.account.created", "crm.kickoff.scheduled"})
    amount_median = 18_000.0  # first-year contract value
    # Entered again in Salesforce a while later; MuleSoft syncs it and NetSuite creates a second
    # customer before anyone notices: the second one then waits, stuck.
    twin_steps = ("crm.account.created", "middleware.account.synced", "erp.customer.created")
    rejections = MappingProxyType({"erp.credit_check.failed": ("erp.customer.created",)})
    rejection_reasons = MappingProxyType(
        {
            "erp.credit_check.failed": (
                "Credit score below threshold",
                "KYC: beneficial owner not verified",
                "Sanctions screening match needs review",
            )
        }
    )

    def details(self, rng: random.Random) -> dict[str, str]:
        return {
            "owner": rng.choice(_OWNERS),
            "industry": rng.choice(("Manufacturing", "Healthcare", "Retail", "Financial services", "Media")),
            "tax_id": f"{rng.choice(_TAX_PREFIXES)}{rng.randrange(10**8, 10**9)}",
        }

    def attributes(
        self, step: str, deal: Deal, keys: Mapping[str, str], rng: random.Random
    ) -> dict[str, str]:
        match step:
            case "crm.account.created":
                return {
                    "account_name": deal.customer,
                    "region": deal.region,
                    "industry": deal.details["industry"],
                    "tax_id": deal.details["tax_id"],
                }
            case "middleware.account.synced":
                return {"flow": "sfdc-account-to-netsuite", "account_name": deal.customer}
            case "erp.customer.created" | "erp.credit_check.failed":
                return {
                    "subsidiary": self.subsidiary(deal),
                    "customer_number": keys["erp.customer"],
                    "tax_id": deal.details["tax_id"],
                }
            case "billing.customer.created":
                # An e-mail address: the SDK sends it only as a salted hash (redaction).
                return {
                    "stripe_customer": _stripe_id("cus_", rng),
                    "billing_email": f"ap@{ids.domain_of(deal.customer)}",
                }
            case "support.organization.created":
                return {
                    "organization": deal.customer,
                    "support_plan": "Premier" if deal.segment == "enterprise" else "Standard",
                }
            case "crm.kickoff.scheduled":
                return {"csm": deal.details["owner"], "account_name": deal.customer}
        return {"account_name": deal.customer}


class SubscriptionRenewal(Scenario):
    workflow = "subscription-renewal"
    weight = 0.2
    primary = "OPP"
    aliases = MappingProxyType({"billing.invoice": "INV", "erp.sales_order": "SO"})
    references = MappingProxyType({"cpq.quote": "Q"})
    routes = MappingProxyType(
        {
            "billing.invoice.created": Route(announces=("billing.invoice",)),
            "billing.payment.captured": Route(key="billing.invoice"),
            "middleware.payment.synced": Route(key="billing.invoice", announces=("erp.sales_order",)),
            "erp.revenue_schedule.updated": Route(key="erp.sales_order"),
        }
    )
    timing = MappingProxyType(
        {
            "cpq.quote.created": 3 * 3600.0,  # quotes wait on people
            "cpq.quote.approved": 2.5 * 3600.0,
            "billing.invoice.created": 10 * 60.0,
            "billing.payment.captured": 4 * 3600.0,
            "middleware.payment.synced": 180.0,
            "erp.revenue_schedule.updated": 15 * 60.0,
        }
    )
    amount_steps = frozenset(
        {
            "crm.renewal.opened",
            "cpq.quote.created",
            "cpq.quote.approved",
            "billing.invoice.created",
            "billing.payment.captured",
        }
    )
    amount_median = 36_000.0
    rejections = MappingProxyType(
        {"crm.renewal.lost": ("cpq.quote.created", "cpq.quote.approved", "billing.invoice.created")}
    )

    def details(self, rng: random.Random) -> dict[str, str]:
        return {
            "owner": rng.choice(_OWNERS),
            "term": rng.choice(("12 months", "12 months", "24 months", "36 months")),
            "uplift_pct": str(rng.choice((0, 3, 5, 7))),
        }

    def attributes(
        self, step: str, deal: Deal, keys: Mapping[str, str], rng: random.Random
    ) -> dict[str, str]:
        match step:
            case "crm.renewal.opened":
                return {
                    "account": deal.customer,
                    "owner": deal.details["owner"],
                    "term": deal.details["term"],
                }
            case "cpq.quote.created" | "cpq.quote.approved":
                return {"quote": keys["cpq.quote"], "uplift_pct": deal.details["uplift_pct"]}
            case "billing.invoice.created" | "billing.payment.captured":
                return {"invoice": keys["billing.invoice"], "customer": deal.customer}
            case "middleware.payment.synced":
                return {"flow": "stripe-payment-to-netsuite", "sales_order": keys["erp.sales_order"]}
            case "erp.revenue_schedule.updated":
                return {"subsidiary": self.subsidiary(deal), "term": deal.details["term"]}
        return {"account": deal.customer}

    def mismatched(self, step: str, deal: Deal, rng: random.Random) -> tuple[float | None, str | None]:
        """The amount and currency a system that disagrees records instead of the deal's: the ERP
        books it in its ledger currency, or sends no amount at all."""
        if deal.amount is not None and deal.currency not in (None, "USD") and rng.random() < 0.6:
            return round(deal.amount / _FX[deal.currency], 2), "USD"
        return None, None

    def rejection(self, step: str, deal: Deal, rng: random.Random) -> Outcome:
        # Losing a renewal is a business outcome, not a system error: the event itself is fine.
        reason = rng.choice(
            ("Budget cut", "Moved to a competitor", "Consolidated vendors", "Company acquired")
        )
        return Outcome("ok", None, {"loss_reason": reason, "account": deal.customer})


class SupportCredit(Scenario):
    workflow = "support-credit"
    weight = 0.3
    primary = "CASE"
    aliases = MappingProxyType({"erp.credit_memo": "CM"})
    references = MappingProxyType({"billing.invoice": "INV"})
    routes = MappingProxyType({"erp.credit.approved": Route(announces=("erp.credit_memo",))})
    timing = MappingProxyType(
        {
            "middleware.credit_request.validated": 240.0,
            "erp.credit.approved": 1.5 * 3600.0,  # finance decides
            "billing.credit.posted": 10 * 60.0,
            "support.customer.notified": 8 * 60.0,
        }
    )
    amount_steps = frozenset({"support.credit.requested", "erp.credit.approved", "billing.credit.posted"})
    amount_median = 350.0
    amount_sigma = 1.0
    amount_bounds = (20.0, 25_000.0)
    amount_step = 0.01
    rejections = MappingProxyType({"erp.credit.rejected": ("erp.credit.approved",)})
    rejection_reasons = MappingProxyType(
        {
            "erp.credit.rejected": (
                "Invoice already credited in full",
                "Credit exceeds the approval limit",
                "Outage not covered by the contract's service credits",
            )
        }
    )
    violation = ("billing.credit.posted", "erp.credit.approved")
    proportions = MappingProxyType({**DEFAULT_PROPORTIONS, Fault.REJECTION: 0.07})

    def details(self, rng: random.Random) -> dict[str, str]:
        return {
            "reason": rng.choice(("Service outage", "Billing error", "SLA breach", "Goodwill")),
            "agent": rng.choice(_OWNERS),
        }

    def attributes(
        self, step: str, deal: Deal, keys: Mapping[str, str], rng: random.Random
    ) -> dict[str, str]:
        match step:
            case "support.credit.requested":
                return {
                    "organization": deal.customer,
                    "reason": deal.details["reason"],
                    "agent": deal.details["agent"],
                }
            case "middleware.credit_request.validated":
                return {"invoice": keys["billing.invoice"], "invoice_status": "paid"}
            case "erp.credit.approved" | "erp.credit.rejected":
                return {"credit_memo": keys["erp.credit_memo"], "subsidiary": self.subsidiary(deal)}
            case "billing.credit.posted":
                return {"credit_note": _stripe_id("cn_", rng), "invoice": keys["billing.invoice"]}
            case "support.customer.notified":
                return {"channel": rng.choice(("email", "portal")), "organization": deal.customer}
        return {"organization": deal.customer}


SCRIPTS: tuple[type[Scenario], ...] = (QuoteToCash, CustomerOnboarding, SubscriptionRenewal, SupportCredit)


def scenarios_for(workflows: Workflows) -> dict[str, Scenario]:
    """A scenario per defined workflow: its script when it fits the definition, else the generic one."""
    scripts = {script.workflow: script for script in SCRIPTS}
    found: dict[str, Scenario] = {}
    for definition in workflows:
        script = scripts.get(definition.name, Scenario)
        problems = script.fits(definition)
        if problems:
            logger.warning(
                "threadline simulator: the %s script does not fit its definition (%s); using generic events",
                definition.name,
                "; ".join(problems),
            )
            script = Scenario
        found[definition.name] = script(definition)
    return found
