"""Ingest: what senders post becomes checked events and stored rows.

``otlp.py`` turns OTLP spans (protobuf, and JSON through ``otlp_json.py``) into business events and
technical spans, ``otlp_logs.py`` OTLP log records into business events; ``undefined.py`` says which
events the workflow definitions do not name; ``writer.py`` coalesces every request's rows into
batched inserts and acknowledges only what is stored.
"""
