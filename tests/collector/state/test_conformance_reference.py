"""A real collector's conformance verdicts are PM4Py's token-based replay fitness on the definition's model.

PM4Py is the reference implementation for the process map (bench/queries.py) and has the textbook
conformance measure: replaying each trace on a Petri net. The net is built from the definition:
one transition per step; a place between each step and each step in its ``after`` (an AND-join and
AND-split); a start place, marked, before each step with no ``after``; an end place, in the final
marking, after each step nothing follows. A retry is a second transition with the step's label that
takes and gives back the tokens of the step's output places: enabled once the step is done and
until a step that must follow it starts (after that, doing it again is redone work, which the
replay finds unfit). Failure steps are left out of the net and of the log (a failed transaction's
model would need a net per outcome).

A trace fits when the replay needs no missing token, leaves no remaining one and meets no activity
the net lacks. An open transaction (no complete_on step yet) is judged on its order so far, so for
it remaining tokens (the steps still to come) do not count. Seeded random traces over the example's
workflows (linear extensions of each definition's order, then adjacent swaps, dropped steps, retries,
redone steps, undefined steps, truncations) are sent to a real collector over HTTP; each variant's
verdict in the map must be PM4Py's, and the conforming share the share of fitting transactions.

PM4Py is in the bench extra (pyproject): CI's test extra does not install it, so this test runs where
`make bench` installed it (`pip install -e '.[test,bench]'`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from pm4py.algo.conformance.tokenreplay import algorithm as token_replay
from pm4py.objects.log.obj import Event, EventLog, Trace
from pm4py.objects.petri_net.obj import Marking, PetriNet
from pm4py.objects.petri_net.utils import petri_utils

from tests.support.ingest import business_event, post_events, unique_key
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.workflows import WorkflowDefinition, load

WINDOW = dt.datetime(2022, 9, 14, 3, tzinfo=dt.UTC)  # no other test starts a transaction then
SEED = 20221914
PER_WORKFLOW = 60
UNDEFINED_STEP = "support.survey.sent"
REPLAY = token_replay.Variants.TOKEN_REPLAY.value.Parameters


def model(definition: WorkflowDefinition) -> tuple[PetriNet, Marking, Marking]:
    """The definition's Petri net without its failure steps, with its initial and final marking."""
    net, initial, final = PetriNet(definition.name), Marking(), Marking()
    steps = [step for step in definition.steps if step.name not in definition.fail_on]

    def place(name: str) -> PetriNet.Place:
        created = PetriNet.Place(name)
        net.places.add(created)
        return created

    def transition(name: str, label: str) -> PetriNet.Transition:
        created = PetriNet.Transition(name, label)
        net.transitions.add(created)
        return created

    done = {step.name: transition(step.name, step.name) for step in steps}
    outputs: dict[str, list[PetriNet.Place]] = {step.name: [] for step in steps}
    for step in steps:
        if not step.after:
            start = place(f"start {step.name}")
            initial[start] = 1
            petri_utils.add_arc_from_to(start, done[step.name], net)
        for before in step.after:
            between = place(f"{before} -> {step.name}")
            petri_utils.add_arc_from_to(done[before], between, net)
            petri_utils.add_arc_from_to(between, done[step.name], net)
            outputs[before].append(between)
    for name, places in outputs.items():
        if not places:
            end = place(f"end {name}")
            final[end] = 1
            petri_utils.add_arc_from_to(done[name], end, net)
            places.append(end)
        retry = transition(f"{name} (retry)", name)
        for output in places:
            petri_utils.add_arc_from_to(output, retry, net)
            petri_utils.add_arc_from_to(retry, output, net)
    return net, initial, final


def fits(definition: WorkflowDefinition, steps: tuple[str, ...]) -> bool:
    """PM4Py's verdict on one trace: token replay on the definition's net (an open trace: order only)."""
    net, initial, final = model(definition)
    completed = bool(set(steps) & set(definition.complete_on))
    log = EventLog([Trace([Event({"concept:name": step}) for step in steps])])
    parameters = {
        REPLAY.CONSIDER_REMAINING_IN_FITNESS: completed,
        REPLAY.CONSIDER_ACTIVITIES_NOT_IN_MODEL_IN_FITNESS: True,
    }
    [replayed] = token_replay.apply(log, net, initial, final, parameters=parameters)
    return bool(replayed["trace_is_fit"])


def linear_extension(definition: WorkflowDefinition, rng: random.Random) -> list[str]:
    """The steps (failure steps left out) in a random order the definition allows."""
    left = [step for step in definition.steps if step.name not in definition.fail_on]
    order: list[str] = []
    while left:
        ready = [step for step in left if set(step.after) <= set(order)]
        chosen = rng.choice(ready)
        order.append(chosen.name)
        left.remove(chosen)
    return order


def trace(definition: WorkflowDefinition, rng: random.Random) -> list[str]:
    steps = linear_extension(definition, rng)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        at = rng.randrange(len(steps))
        match rng.choice(("swap", "drop", "retry", "redo", "undefined", "truncate")):
            case "swap" if at + 1 < len(steps):
                steps[at], steps[at + 1] = steps[at + 1], steps[at]
            case "drop" if len(steps) > 1:
                del steps[at]
            case "retry":
                steps.insert(at + 1, steps[at])
            case "redo":
                steps.insert(rng.randrange(at, len(steps)) + 1, steps[at])
            case "undefined":
                steps.insert(at, UNDEFINED_STEP)
            case "truncate":
                steps = steps[: at + 1]
    return steps


def test_each_variants_verdict_is_pm4pys_token_replay_fitness(http: httpx.Client) -> None:
    rng = random.Random(SEED)
    definitions = list(load(EXAMPLE_WORKFLOWS))
    sent: dict[str, Counter[tuple[str, ...]]] = {}
    events: list[dict[str, Any]] = []
    for index, definition in enumerate(definitions):
        sent[definition.name] = Counter()
        for number in range(PER_WORKFLOW):
            steps = trace(definition, rng)
            sent[definition.name][tuple(steps)] += 1
            key = unique_key("REF")
            start = WINDOW + dt.timedelta(minutes=index * PER_WORKFLOW + number)
            events += [
                business_event(
                    key,
                    workflow=definition.name,
                    step=step,
                    system="mulesoft",
                    timestamp=(start + dt.timedelta(seconds=n)).isoformat(),
                )
                for n, step in enumerate(steps)
            ]
    assert post_events(http, *events).status_code == 200
    window = {"since": WINDOW.isoformat(), "until": (WINDOW + dt.timedelta(days=1)).isoformat()}

    disagreements = []
    for definition in definitions:
        process = http.get(f"/api/workflows/{definition.name}/map", params=window).json()
        assert {tuple(v["steps"]): v["transactions"] for v in process["variants"]} == sent[definition.name]
        verdicts = {tuple(v["steps"]): v["conforming"] for v in process["variants"]}
        reference = {steps: fits(definition, steps) for steps in sent[definition.name]}
        disagreements += [
            (definition.name, steps, verdicts[steps], reference[steps])
            for steps in reference
            if verdicts[steps] != reference[steps]
        ]
        fitting = sum(n for steps, n in sent[definition.name].items() if reference[steps])
        assert process["conformance"]["conforming_share"] == pytest.approx(fitting / PER_WORKFLOW)
        # Both kinds of answer are exercised: some variants fit, some do not.
        assert set(reference.values()) == {True, False}, definition.name
    assert disagreements == [], "(workflow, steps, Threadline, PM4Py)"
