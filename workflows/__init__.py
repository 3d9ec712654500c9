"""Temporal workflow classes: deterministic orchestration, no I/O (activities do that).

:data:`WORKFLOWS` is the registry: every workflow the platform's workers run. A workflow class
lands here once it is written; ``campaign-express worker`` and the worker inside ``up`` register
exactly this list.
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
