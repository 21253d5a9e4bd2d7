"""State: where each transaction's state is decided, and the queries that read it.

``rules.py`` decides, in one ClickHouse query, every transaction's workflow, state, waits, SLA clock
and violations from its stored events and the workflow definitions. Over it: ``transactions.py``
(one transaction; the operations queue), ``overview.py``, ``exception_groups.py`` (the Exceptions
panel, the operators' actions and their audit trail), and, reading events and spans without the
rules, ``process_map.py``, ``systems.py``, ``traces.py``; ``timeline.py`` lays a transaction's steps
against its definition. None of them imports FastAPI: the HTTP routes are in ``routes/``.
"""
