"""Recorded JourneyWorkflow histories replay against today's code.

A change that would break customers already inside a journey (a command added, dropped or
moved) fails here before it ships; tests/histories/journey/README.md says what to do then.
The other tests prove the guard bites: a copy of the workflow with one extra step at entry
fails every history, and the same step behind ``workflow.patched`` replays them all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Replayer

from domain.journey_runs import JourneyRunInput, JourneyRunState
from temporal.converter import DATA_CONVERTER
from temporal.sandbox import workflow_runner
from tests.histories.record_journey import HISTORIES, SCENARIOS, load
from workflows.journey import JourneyWorkflow

RECORDED = sorted(HISTORIES.glob("*.json"))
IDS = [path.stem for path in RECORDED]

# A change someone might make: a minute's grace before the first node.
GRACE = timedelta(minutes=1)


@workflow.defn(name="Journey")
class JourneyWithAGraceMinute(JourneyWorkflow):
    """Today's workflow with the grace minute added as is: new runs would work, customers
    inside the journey would not."""

    @workflow.run
    async def run(self, request: JourneyRunInput) -> JourneyRunState:
        await workflow.sleep(GRACE)
        return await super().run(request)


@workflow.defn(name="Journey")
class JourneyWithAPatchedGraceMinute(JourneyWorkflow):
    """The same minute behind a patch: runs that started before it skip it."""

    @workflow.run
    async def run(self, request: JourneyRunInput) -> JourneyRunState:
        if workflow.patched("grace-minute-at-entry"):
            await workflow.sleep(GRACE)
        return await super().run(request)


def replayer_of(journey: type) -> Replayer:
    return Replayer(
        workflows=[journey],
        data_converter=DATA_CONVERTER,
        # The changed copies live in this module: pass tests through rather than re-import.
        workflow_runner=workflow_runner("tests"),
    )


def test_every_journey_scenario_has_a_recorded_history() -> None:
    # Without this, losing the directory would leave the replay tests with nothing to check.
    assert {path.stem for path in RECORDED} >= set(SCENARIOS)


@pytest.mark.parametrize("path", RECORDED, ids=IDS)
async def test_recorded_journey_replays_on_the_current_workflow(path: Path) -> None:
    replayer = Replayer(
        workflows=[JourneyWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(load(path))


@pytest.mark.parametrize("path", RECORDED, ids=IDS)
async def test_recorded_journey_fails_on_a_workflow_with_an_extra_step(path: Path) -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replayer_of(JourneyWithAGraceMinute).replay_workflow(load(path))


@pytest.mark.parametrize("path", RECORDED, ids=IDS)
async def test_recorded_journey_replays_when_the_extra_step_is_patched_in(path: Path) -> None:
    await replayer_of(JourneyWithAPatchedGraceMinute).replay_workflow(load(path))
