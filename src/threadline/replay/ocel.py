"""OCEL 2.0 JSON object-centric event logs: which events make up whose transaction.

An object-centric log has no single case: an event relates to several objects (an order, its
items, an invoice, the customer). Threadline needs one business key per event, so one object
type is chosen as *the transaction* (``object_type``; default: the type related to the most
events, named in the report's notes). Then, for an enterprise reader:

- every event related to an object of that type is a step of that object's transaction
  (correlation id = object id; related to two orders, it is a step of both);
- an object of another type related to exactly one transaction object (through events or the
  log's object-to-object relationships), such as an order's own items or its invoice, is
  another key of that transaction: an **alias** ``{"<object type>": "<object type>:<object id>"}``,
  so looking ``invoices:inv-1`` up finds the order. The alias is qualified by its type because
  the bare id is the object's own key in another view of the same log (``object_type=invoices``):
  were it an alias here, replaying both views would merge the invoice's transaction into the
  order's. Events related only to such objects (``pick item``, ``pay invoice``) are steps of that
  transaction too: exactly what the collector does with an event that carries only an alias.
  Several objects of one type in one event get the kinds ``items``, ``items#2``, ... (a
  transaction's aliases are keyed by kind);
- an object related to several transactions (a customer, a product, an employee, a package of
  several orders' items) is *not* a key of any one of them: claiming it for the first would
  send the others' lookups to the wrong order. It is kept as the attribute
  ``object.<type>`` (ids joined by ``,``), and events related only to such objects belong to
  no transaction: they are counted as skipped and listed in the notes, by event type;
- the event's ``type`` is the step, ``time`` the timestamp (a zone-less time is read in
  ``timezone``), its attributes are attributes, the attribute ``system``, ``org:resource`` or
  ``resource`` is the system (else the ``system`` option), the workflow is the ``workflow``
  option or the object type's name, and the event id is the OCEL event id (``<id>@<object
  id>`` when the event is a step of several transactions, since each business event needs its
  own id). OCEL has no status: every event is ``ok``.

The JSON is read whole (relationships can only be resolved with the whole log at hand), but
each event's line is computed on the way, so a bad event is reported as ``line N, event #K (id X)``.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from threadline.contract.event import MAX_ALIASES

from .errors import ReplayError
from .files import open_binary
from .source import Candidate, LogSource
from .values import TimestampParser

SYSTEM_ATTRIBUTES = ("system", "org:resource", "resource")
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def load_with_event_lines(text: str) -> tuple[dict[str, Any], list[int]]:
    """The JSON document, and the line on which each element of its top-level ``events`` starts.

    Python's ``json`` knows no positions, so the top-level object is walked by hand and each
    value decoded with ``raw_decode`` (the same C scanner as ``json.loads``), which tells where
    the value started. Raises ``json.JSONDecodeError`` (with a line) for malformed JSON.
    """
    decoder = json.JSONDecoder()

    def skip(index: int) -> int:
        blank = _WHITESPACE.match(text, index)  # always matches, if only the empty string
        return blank.end() if blank else index

    def expect(index: int, char: str, what: str) -> int:
        if index >= len(text) or text[index] != char:
            raise json.JSONDecodeError(f"Expecting {what}", text, index)
        return index + 1

    document: dict[str, Any] = {}
    offsets: list[int] = []
    index = expect(skip(0), "{", "'{' (an OCEL 2.0 log is a JSON object)")
    index = skip(index)
    if index < len(text) and text[index] == "}":
        index += 1
    else:
        while True:
            key, index = decoder.raw_decode(text, index)
            if not isinstance(key, str):
                raise json.JSONDecodeError("Expecting property name", text, index)
            index = skip(expect(skip(index), ":", "':'"))
            if key == "events" and index < len(text) and text[index] == "[":
                events: list[Any] = []
                index = skip(index + 1)
                if index < len(text) and text[index] == "]":
                    index += 1
                else:
                    while True:
                        offsets.append(index)
                        value, index = decoder.raw_decode(text, index)
                        events.append(value)
                        index = skip(index)
                        if index < len(text) and text[index] == ",":
                            index = skip(index + 1)
                            continue
                        index = expect(index, "]", "',' or ']'")
                        break
                document[key] = events
            else:
                document[key], index = decoder.raw_decode(text, index)
            index = skip(index)
            if index < len(text) and text[index] == ",":
                index = skip(index + 1)
                continue
            index = expect(index, "}", "',' or '}'")
            break
    if skip(index) != len(text):
        raise json.JSONDecodeError("Extra data", text, skip(index))
    lines, line, position = [], 1, 0
    for offset in offsets:
        line += text.count("\n", position, offset)
        position = offset
        lines.append(line)
    return document, lines


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _related(event: dict[str, Any]) -> list[str]:
    """The ids of the objects an event relates to, once each, in order."""
    relationships = event.get("relationships")
    if not isinstance(relationships, list):
        return []
    ids = (rel.get("objectId") for rel in relationships if isinstance(rel, dict))
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


class OcelLog(LogSource):
    """An OCEL 2.0 JSON log seen from one object type (see the module's docstring for the mapping)."""

    def __init__(
        self,
        path: Path,
        *,
        object_type: str | None = None,
        workflow: str | None = None,
        system: str | None = None,
        timezone: str = "UTC",
    ) -> None:
        super().__init__()
        self.path = path
        self.object_type = object_type
        self.workflow = workflow
        self.system = system
        self.timestamps = TimestampParser(timezone)
        self.chosen = object_type or ""  # the transaction object type, once the log is read

    def _load(self) -> tuple[list[Any], list[int], dict[str, str], list[Any]]:
        with open_binary(self.path) as stream:
            try:
                text = stream.read().decode("utf-8-sig")
            except (OSError, EOFError) as error:
                raise ReplayError(f"{self.path.name} cannot be read to the end: {error}") from None
            except UnicodeDecodeError:
                raise ReplayError(f"{self.path.name} is not UTF-8 text, as JSON must be") from None
        try:
            document, lines = load_with_event_lines(text)
        except json.JSONDecodeError as error:
            raise ReplayError(
                f"line {error.lineno}: {self.path.name} is not valid JSON: {error.msg}"
            ) from None
        if "ocel:events" in document:
            raise ReplayError(
                f"{self.path.name} is OCEL 1.0 (ocel:events); replay reads OCEL 2.0 JSON "
                "(convert it, e.g. with pm4py: read_ocel then write_ocel2_json)"
            )
        events, objects = document.get("events"), document.get("objects", [])
        if not isinstance(events, list) or not isinstance(objects, list):
            raise ReplayError(
                f"{self.path.name} is not OCEL 2.0 JSON: it needs the lists 'events' and 'objects'"
            )
        type_of = {
            item["id"]: item["type"]
            for item in objects
            if isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("type"), str)
        }
        return events, lines, type_of, objects

    def _choose_type(self, events: list[Any], type_of: dict[str, str]) -> str:
        counts: Counter[str] = Counter()
        for event in events:
            if isinstance(event, dict):
                counts.update({type_of[i] for i in _related(event) if i in type_of})
        listing = ", ".join(f"{name} ({count} events)" for name, count in counts.most_common()) or "none"
        if self.object_type is not None:
            if self.object_type not in set(type_of.values()):
                raise ReplayError(f"no object of type {self.object_type!r}; the object types are: {listing}")
            chosen = self.object_type
        elif not counts:
            raise ReplayError(f"no event of {self.path.name} is related to any object: nothing to correlate")
        else:
            chosen = max(sorted(counts), key=lambda name: counts[name])
        others = ", ".join(f"{name} ({count})" for name, count in counts.most_common() if name != chosen)
        self.notes.append(
            f"transactions are the {chosen!r} objects, related to {counts[chosen]} events"
            + (f"; other object types: {others} (choose one with object_type)" if others else "")
        )
        return chosen

    @staticmethod
    def _owners(
        events: list[Any], objects: list[Any], type_of: dict[str, str], chosen: str
    ) -> dict[str, str]:
        """Object → its transaction, for objects of other types related to exactly one transaction."""
        owners: defaultdict[str, set[str]] = defaultdict(set)
        for event in events:
            if not isinstance(event, dict):
                continue
            related = [i for i in _related(event) if i in type_of]
            transactions = [i for i in related if type_of[i] == chosen]
            if transactions:
                for other in related:
                    if type_of[other] != chosen:
                        owners[other].update(transactions)
        for item in objects:
            if not isinstance(item, dict) or item.get("id") not in type_of:
                continue
            for other in _related(item):
                pair = (item["id"], other)
                for one, two in (pair, pair[::-1]):
                    if type_of.get(one) == chosen and type_of.get(two) not in (None, chosen):
                        owners[two].add(one)
        return {key: next(iter(found)) for key, found in owners.items() if len(found) == 1}

    def candidates(self) -> Iterator[Candidate]:
        events, lines, type_of, objects = self._load()
        chosen = self.chosen = self._choose_type(events, type_of)
        owner_of = self._owners(events, objects, type_of, chosen)
        if self.system is None and not any(
            isinstance(event, dict)
            and any(
                a.get("name") in SYSTEM_ATTRIBUTES
                for a in event.get("attributes") or []
                if isinstance(a, dict)
            )
            for event in events
        ):
            raise ReplayError(
                f"the events of {self.path.name} name no system (attribute {', '.join(SYSTEM_ATTRIBUTES)}): "
                "pass the system they come from"
            )
        skipped_types: Counter[str] = Counter()
        unknown: set[str] = set()
        for number, (event, line) in enumerate(zip(events, lines, strict=True), start=1):
            if not isinstance(event, dict):
                yield Candidate(line, number, {}, (("event", "is not a JSON object"),), f"event #{number}")
                continue
            event_id = event.get("id")
            ref = f"event #{number}" + (f" (id {event_id})" if isinstance(event_id, str) else "")
            structure = [
                (name, "is required (a non-empty string)")
                for name in ("id", "type", "time")
                if not isinstance(event.get(name), str) or not event[name].strip()
            ]
            if structure:
                yield Candidate(line, number, {}, tuple(structure), ref)
                continue
            related = _related(event)
            unknown.update(i for i in related if i not in type_of)
            related = [i for i in related if i in type_of]
            direct = [i for i in related if type_of[i] == chosen]
            transactions = list(dict.fromkeys([*direct, *(owner_of[i] for i in related if i in owner_of)]))
            if not transactions:
                self.skipped += 1
                skipped_types[event["type"]] += 1
                continue
            base, problems = self._base_fields(event)
            for transaction in transactions:
                fields = dict(base)
                fields["correlation_id"] = transaction
                fields["event_id"] = event["id"] if len(transactions) == 1 else f"{event['id']}@{transaction}"
                aliases, attributes = self._objects(related, transaction, type_of, owner_of)
                if aliases:
                    fields["aliases"] = aliases
                if attributes:
                    fields["attributes"] = {**fields.get("attributes", {}), **attributes}
                yield Candidate(line, number, fields, problems, ref)
        self._note_left_out(chosen, skipped_types, unknown)

    def _base_fields(self, event: dict[str, Any]) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
        """The fields every business event of this OCEL event shares."""
        attributes: dict[str, str] = {}
        for attribute in event.get("attributes") or []:
            if isinstance(attribute, dict) and isinstance(attribute.get("name"), str):
                value = _text(attribute.get("value"))
                if value is not None and value.strip():
                    attributes[attribute["name"]] = value
        system = next((attributes.pop(n) for n in SYSTEM_ATTRIBUTES if n in attributes), None) or self.system
        fields: dict[str, Any] = {"workflow": self.workflow or self.chosen, "step": event["type"]}
        if system:
            fields["system"] = system
        problems: tuple[tuple[str, str], ...] = ()
        try:
            fields["timestamp"] = self.timestamps(event["time"])
        except ValueError as error:
            problems = (("timestamp", str(error)),)
        if attributes:
            fields["attributes"] = attributes
        return fields, problems

    @staticmethod
    def _objects(
        related: list[str], transaction: str, type_of: dict[str, str], owner_of: dict[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The transaction's own objects as aliases; every other related object as an attribute."""
        aliases: dict[str, str] = {}
        others: defaultdict[str, list[str]] = defaultdict(list)
        seen: Counter[str] = Counter()
        for key in sorted((i for i in related if i != transaction), key=lambda i: (type_of[i], i)):
            kind = type_of[key]
            if owner_of.get(key) == transaction and len(aliases) < MAX_ALIASES:
                seen[kind] += 1
                aliases[kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"] = f"{kind}:{key}"
            else:
                others[kind].append(key)
        return aliases, {f"object.{kind}": ",".join(keys) for kind, keys in others.items()}

    def _note_left_out(self, chosen: str, skipped_types: Counter[str], unknown: set[str]) -> None:
        if skipped_types:
            by_type = ", ".join(f"{name} ({count})" for name, count in skipped_types.most_common(10))
            self.notes.append(
                f"{sum(skipped_types.values())} events are related to no single {chosen!r} object "
                f"(only to objects shared by several, or to none) and were skipped: {by_type}"
            )
        if unknown:
            example = ", ".join(sorted(unknown)[:5])
            self.notes.append(
                f"{len(unknown)} related object ids are not in 'objects' and were ignored: {example}"
            )
