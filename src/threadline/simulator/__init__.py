"""The simulator: fake CRM, CPQ, billing, support and ERP integrations, instrumented with the real SDK.

``simulate(endpoint, rate, seed)`` back-fills a few days of history (so every chart has data at
once, and the API shows transactions in all four states straight away), then runs the example
workflows live, with realistic timing, amounts and currencies and injected faults. See ``run.py``
for the units, ``faults.py`` for the faults and their proportions, ``scenarios.py`` for the business
behind each workflow.
"""

from .faults import Fault
from .planner import PlannedEvent
from .run import simulate
from .stats import SimulationStats, TransactionRef

__all__ = ["Fault", "PlannedEvent", "SimulationStats", "TransactionRef", "simulate"]
