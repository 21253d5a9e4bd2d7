"""Alerting: rules from the workflows file, evaluated in the collector, delivered to receivers.

- ``rules``: the ``alerts:`` section of the definitions file (receivers and rules), validated
  with file:line errors like the rest of the file;
- ``evaluate``: which rules hold now, read from the one state query (``rules.summary_sql``);
- ``records``: alert state, the notification outbox and delivery attempts, stored in ClickHouse
  so a restart neither fires an alert twice nor loses a notification;
- ``payloads``: what a webhook or a Slack-compatible receiver is sent;
- ``delivery``: sending, with bounded exponential backoff and every attempt recorded;
- ``metrics``: transaction gauges per workflow and state on ``/metrics`` (for Alertmanager);
- ``service``: the two background threads (evaluate on a schedule, deliver) the collector runs;
- ``queries``: what ``/api/alerts`` answers (its routes are ``routes.alerts``).

This package's ``__init__`` imports nothing, so that ``workflows`` can import ``rules`` early.
"""
