"""What the SDK and the collector share, defined once: standard library only, so it ships in
threadline-sdk and every sender and the collector read the same facts.

- ``attributes``: the span attribute names of a business event on the wire (``threadline.*``);
- ``event``: the event's fields, vocabularies and limits;
- ``redaction``: which keys are sensitive and how their values are hashed.
"""
