"""Which transaction a stored transaction id belongs to now: itself, or where a link took it.

Events and aggregates keep the transaction their key had when they arrived; a transaction absorbed
later (its key announced as another's alias) has a ``transaction_links`` row, one hop, kept flat by
the writer. Queries map through it (the pattern of PostHog's distinct-id overrides) with a join,
not a constant: a store can hold tens of thousands of links, and a query copies a constant into
every expression that uses it.
"""

from __future__ import annotations

LINKS = """
SELECT transaction_id, merged_into
FROM transaction_links FINAL
WHERE tenant = {tenant:String}
"""

# Every transaction id on either side of a link: the only ones whose rows may merge with others.
LINKED = f"(SELECT transaction_id FROM ({LINKS}) UNION ALL SELECT merged_into FROM ({LINKS}))"


def with_current_transaction(rows: str) -> str:
    """``rows`` (a SELECT with a ``transaction_id`` column) and the transaction each belongs to now."""
    return f"""
SELECT rows.*, if(links.merged_into = '', rows.transaction_id, links.merged_into) AS current_transaction
FROM ({rows}) AS rows
LEFT JOIN ({LINKS}) AS links ON rows.transaction_id = links.transaction_id
"""


def several_rows(table: str, scope: str) -> str:
    """The transactions with more than one row in an aggregate ``table`` (not merged yet), by a hash
    of their id: a collision only sends another transaction down the merging path, right for all."""
    return (
        f"(SELECT cityHash64(transaction_id) AS hash FROM {table} WHERE {scope} "
        "GROUP BY hash HAVING count() > 1)"
    )


def and_linked_into(transactions: str) -> str:
    """The transactions of ``transactions`` (a SELECT with a ``current_transaction`` column) and
    every transaction id linked into one of them: all the ids their rows are stored under."""
    return f"""
      SELECT current_transaction FROM ({transactions})
      UNION ALL
      SELECT transaction_id FROM ({LINKS})
      WHERE merged_into IN (SELECT current_transaction FROM ({transactions}))
  """
