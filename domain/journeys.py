"""The journey language: a trigger, entry rules, exit criteria and a graph of nodes.

A definition is JSON a marketer writes (or a UI produces); ``JourneyDefinition.model_validate``
checks its shape, ``problems`` checks the graph (every ``next`` names a node, the start exists,
every node is reachable, no cycle), and both report errors with the path to the field.

    {"name": "Abandoned cart",
     "trigger": {"type": "event", "event": "cart_abandoned"},
     "entry": {"reentry": true, "min_interval": "P1D"},
     "exit_on": [{"event": "purchase"}],
     "start": "wait",
     "nodes": [
       {"id": "wait", "type": "wait", "duration": "PT2S", "next": "window"},
       {"id": "window", "type": "wait_for_event", "event": "purchase", "timeout": "PT10S",
        "on_event": "done", "on_timeout": "email"},
       {"id": "email", "type": "action", "channel": "email",
        "template": {"subject": "Still thinking, {{ profile.first_name }}?",
                     "body": "Your cart: {{ event.items }}"},
        "next": "done"},
       {"id": "done", "type": "exit"}]}

Durations are ISO 8601 (pydantic's ``timedelta``). Nodes hold no state: the journey workflow
walks them, one at a time, for one customer.
"""

from __future__ import annotations

import hashlib
import re
from datetime import time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
EventName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
PropertyPath = Annotated[str, Field(pattern=r"^(profile|event)\.[A-Za-z0-9_.]{1,200}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions ---------------------------------------------------------------------------------


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    CONTAINS = "contains"
    EXISTS = "exists"


class Condition(_Strict):
    """``profile.<path>`` or ``event.<path>`` compared with a value."""

    path: PropertyPath
    op: Operator = Operator.EQ
    value: Any = None


def lookup(context: dict[str, Any], path: str) -> tuple[bool, Any]:
    """The value at a dotted ``path`` (``profile.tier``, ``event.cart.total``), if present."""
    current: Any = context
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return False, None
    return True, current


def holds(condition: Condition, context: dict[str, Any]) -> bool:
    found, actual = lookup(context, condition.path)
    op, expected = condition.op, condition.value
    if op is Operator.EXISTS:
        return found == bool(expected if expected is not None else True)
    if not found:
        return op is Operator.NE
    try:
        if op is Operator.EQ:
            return bool(actual == expected)
        if op is Operator.NE:
            return bool(actual != expected)
        if op is Operator.GT:
            return bool(actual > expected)
        if op is Operator.GTE:
            return bool(actual >= expected)
        if op is Operator.LT:
            return bool(actual < expected)
        if op is Operator.LTE:
            return bool(actual <= expected)
        if op is Operator.IN:
            return actual in expected
        if op is Operator.CONTAINS:
            return expected in actual
    except TypeError:  # comparing a string with a number, say: not a match
        return False
    return False


def all_hold(conditions: list[Condition], context: dict[str, Any]) -> bool:
    return all(holds(condition, context) for condition in conditions)


# --- triggers -----------------------------------------------------------------------------------


class EventTrigger(_Strict):
    type: Literal["event"] = "event"
    event: EventName
    where: list[Condition] = Field(default_factory=list, description="on event.* properties")


class SegmentTrigger(_Strict):
    type: Literal["segment"] = "segment"
    segment: str = Field(min_length=1, max_length=100)


class ScheduleTrigger(_Strict):
    """Enter everyone in ``segment`` (or every customer) at a local time of day, once on
    ``date`` or on each of ``weekdays`` (0 = Monday), in each customer's own time zone."""

    type: Literal["schedule"] = "schedule"
    at: time
    date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=list)
    segment: str | None = None

    @model_validator(mode="after")
    def _once_or_recurring(self) -> ScheduleTrigger:
        if (self.date is None) == (not self.weekdays):
            raise ValueError("a schedule has either a date (once) or weekdays (recurring)")
        return self


Trigger = Annotated[EventTrigger | SegmentTrigger | ScheduleTrigger, Field(discriminator="type")]


# --- nodes --------------------------------------------------------------------------------------


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"
    WEBHOOK = "webhook"


class Template(_Strict):
    """Text with ``{{ profile.x }}`` and ``{{ event.y }}`` placeholders."""

    subject: str = Field(default="", max_length=500)
    body: str = Field(min_length=1, max_length=100_000)
    url: str | None = Field(default=None, max_length=2048, description="webhook target")


class WaitNode(_Strict):
    """Wait a ``duration``, or until a local time of day, or until a date in the profile."""

    type: Literal["wait"] = "wait"
    id: NodeId
    duration: timedelta | None = None
    until_local_time: time | None = None
    until_profile_date: PropertyPath | None = None
    next: NodeId

    @model_validator(mode="after")
    def _one_way_to_wait(self) -> WaitNode:
        given = [self.duration, self.until_local_time, self.until_profile_date]
        if sum(item is not None for item in given) != 1:
            raise ValueError(
                "a wait has exactly one of duration, until_local_time, until_profile_date"
            )
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("a wait's duration must be positive")
        return self


class WaitForEventNode(_Strict):
    type: Literal["wait_for_event"] = "wait_for_event"
    id: NodeId
    event: EventName
    where: list[Condition] = Field(default_factory=list)
    timeout: timedelta = Field(gt=timedelta(0))
    on_event: NodeId
    on_timeout: NodeId


class Branch(_Strict):
    when: list[Condition] = Field(min_length=1)
    next: NodeId


class BranchNode(_Strict):
    """The first branch whose conditions all hold, else ``otherwise``."""

    type: Literal["branch"] = "branch"
    id: NodeId
    branches: list[Branch] = Field(min_length=1, max_length=20)
    otherwise: NodeId


class SplitPath(_Strict):
    name: str = Field(min_length=1, max_length=50)
    weight: int = Field(gt=0, le=10_000)
    next: NodeId


class SplitNode(_Strict):
    """A/B test: each customer goes down one path, the same one every time."""

    type: Literal["split"] = "split"
    id: NodeId
    paths: list[SplitPath] = Field(min_length=2, max_length=10)


class ActionNode(_Strict):
    type: Literal["action"] = "action"
    id: NodeId
    channel: Channel
    template: Template
    transactional: bool = Field(
        default=False, description="bypasses frequency caps and quiet hours (receipts, resets)"
    )
    next: NodeId

    @model_validator(mode="after")
    def _webhooks_have_a_url(self) -> ActionNode:
        if self.channel is Channel.WEBHOOK and not self.template.url:
            raise ValueError("a webhook action needs template.url")
        return self


class UpdateProfileNode(_Strict):
    type: Literal["update_profile"] = "update_profile"
    id: NodeId
    set: dict[str, Any] = Field(min_length=1, description="traits to set on the profile")
    next: NodeId


class ExitNode(_Strict):
    type: Literal["exit"] = "exit"
    id: NodeId


Node = Annotated[
    WaitNode
    | WaitForEventNode
    | BranchNode
    | SplitNode
    | ActionNode
    | UpdateProfileNode
    | ExitNode,
    Field(discriminator="type"),
]


def successors(node: Node) -> list[str]:
    if isinstance(node, WaitForEventNode):
        return [node.on_event, node.on_timeout]
    if isinstance(node, BranchNode):
        return [branch.next for branch in node.branches] + [node.otherwise]
    if isinstance(node, SplitNode):
        return [path.next for path in node.paths]
    if isinstance(node, ExitNode):
        return []
    return [node.next]


# --- the definition -----------------------------------------------------------------------------


class EntryRules(_Strict):
    reentry: bool = False
    max_entries: int | None = Field(default=None, gt=0)
    min_interval: timedelta | None = None


class ExitCriterion(_Strict):
    event: EventName
    where: list[Condition] = Field(default_factory=list)


class JourneyDefinition(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    trigger: Trigger
    entry: EntryRules = Field(default_factory=EntryRules)
    exit_on: list[ExitCriterion] = Field(default_factory=list, max_length=20)
    start: NodeId
    nodes: list[Node] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _graph_is_sound(self) -> JourneyDefinition:
        found = problems(self)
        if found:
            raise ValueError("; ".join(found))
        return self

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def problems(definition: JourneyDefinition) -> list[str]:
    """What is wrong with the graph, in words; empty when it is sound."""
    ids = [node.id for node in definition.nodes]
    found: list[str] = []
    duplicates = sorted({node_id for node_id in ids if ids.count(node_id) > 1})
    if duplicates:
        found.append(f"node ids used twice: {', '.join(duplicates)}")
    known = set(ids)
    if definition.start not in known:
        found.append(f"start names no node: {definition.start!r}")
    for node in definition.nodes:
        for target in successors(node):
            if target not in known:
                found.append(f"node {node.id!r} leads to no node {target!r}")
    if found:
        return found
    graph = {node.id: successors(node) for node in definition.nodes}
    reached: set[str] = set()
    stack = [definition.start]
    while stack:
        current = stack.pop()
        if current not in reached:
            reached.add(current)
            stack.extend(graph[current])
    unreachable = [node_id for node_id in ids if node_id not in reached]
    if unreachable:
        found.append(f"nodes never reached from start: {', '.join(unreachable)}")
    if _has_cycle(graph, definition.start):
        found.append("the nodes form a cycle: a journey must end (re-enter it instead)")
    if not any(isinstance(node, ExitNode) for node in definition.nodes):
        found.append("a journey needs at least one exit node")
    return found


def _has_cycle(graph: dict[str, list[str]], start: str) -> bool:
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node_id: str) -> bool:
        if node_id in visiting:
            return True
        if node_id in done:
            return False
        visiting.add(node_id)
        cyclic = any(visit(target) for target in graph[node_id])
        visiting.discard(node_id)
        done.add(node_id)
        return cyclic

    return visit(start)


# --- helpers the workflow and the REST layer share ---------------------------------------------


def split_path(node: SplitNode, journey_id: str, customer_id: str) -> SplitPath:
    """The customer's path: a hash of (journey, node, customer) over the weights, so the same
    customer always lands on the same side, in every process and every replay."""
    digest = hashlib.sha256(f"{journey_id}|{node.id}|{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(path.weight for path in node.paths)
    for path in node.paths:
        if point < path.weight:
            return path
        point -= path.weight
    return node.paths[-1]


_PLACEHOLDER = re.compile(r"\{\{\s*((?:profile|event)(?:\.[A-Za-z0-9_]+)+)\s*\}\}")


def render(text: str, context: dict[str, Any]) -> str:
    """Fill ``{{ profile.x }}`` / ``{{ event.y }}``; a missing value renders as empty."""

    def value(match: re.Match[str]) -> str:
        found, actual = lookup(context, match.group(1))
        return "" if not found or actual is None else str(actual)

    return _PLACEHOLDER.sub(value, text)
