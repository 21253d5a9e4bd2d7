"""Which transaction a stored transaction id belongs to now: itself, or where a link took it.

Events and aggregates keep the transaction their key had when they arrived; a transaction absorbed
later (its key announced as another's alias) has a ``transaction_links`` row, one hop, kept flat by
the writer. Queries map through these fragments (the pattern of PostHog's distinct-id overrides).
"""

from __future__ import annotations

LINKS = """(
    SELECT (groupArray(transaction_id), groupArray(merged_into))
    FROM transaction_links FINAL
    WHERE tenant = {tenant:String}
)"""
CURRENT_TRANSACTION = f"transform(transaction_id, {LINKS}.1, {LINKS}.2, transaction_id)"
LINKED = f"(SELECT arrayJoin(arrayConcat({LINKS}.1, {LINKS}.2)))"


__all__ = ["CURRENT_TRANSACTION", "LINKED", "LINKS"]
