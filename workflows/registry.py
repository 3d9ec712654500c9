"""The registry: every workflow the platform's workers run. A workflow class lands here once it
is written; ``campaign-express worker`` and the worker inside ``up`` register exactly this list.

Kept out of the package's ``__init__``: the workflow sandbox re-imports a workflow's package for
every run, and an ``__init__`` importing every workflow module made each journey run pay for
compiling all of them (a third of the worker's CPU in bench/journeys.py).
"""

from __future__ import annotations

from workflows.activation import ActivationWorkflow
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow
from workflows.journey import JourneyWorkflow
from workflows.journey_schedule import JourneyScheduleWorkflow

WORKFLOWS: list[type] = [
    CampaignLifecycleWorkflow,
    JourneyWorkflow,
    JourneyScheduleWorkflow,
    ActivationWorkflow,
]
