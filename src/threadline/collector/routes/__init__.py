"""The collector's HTTP routes: each parses a request, calls a query module (in a worker thread, the
store being synchronous) and maps the answer; what every route shares is in ``dependencies``.

``ingest``: ``/v1/events`` and ``/v1/traces``; ``queries``: transactions, overview, workflows and
their process maps, systems, traces; ``exception_groups``: open exceptions, the operators' actions
and the audit trail; ``alerts``: ``/api/alerts``; ``keys``: ``/api/whoami``; ``health``: liveness,
readiness and the Prometheus metrics.
"""
