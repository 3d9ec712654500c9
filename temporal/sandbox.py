"""The workflow sandbox every worker, test and replayer of ours runs workflows in.

Temporal re-imports a workflow's module for each run to keep runs apart; modules known to be
deterministic and free of module-level state can skip that and come from outside instead,
which is faster and avoids re-importing C extensions (numpy warns when it is loaded twice).
Calls the sandbox forbids (clocks, randomness, I/O) stay forbidden inside them all the same.
"""

from __future__ import annotations

import gc
import sys

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES: tuple[str, ...] = (
    # Ours: the pure domain (no clocks or I/O by rule), activities (workflows import them only
    # for names and input types) and this package (search attribute keys, queue names).
    "domain",
    "activities",
    "temporal",
    # Third party, imported by the domain.
    "numpy",
)


def workflow_runner(*extra_passthrough: str) -> SandboxedWorkflowRunner:
    """The runner to give every ``Worker`` and ``Replayer`` that runs our workflows.

    ``extra_passthrough`` is for tests: a stand-in workflow defined in a test module makes the
    sandbox import that module, and everything it imports, afresh (``"tests"`` avoids that).
    """
    if sys.version_info < (3, 12):
        # A Worker or Replayer validates each workflow by importing its module in the sandbox.
        # Before 3.12 a garbage collection during that import can run a finalizer that warns
        # (an unclosed socket, a coroutine never awaited); the warning imports ``warnings``
        # through the sandbox and CPython's module lock, not re-entrant, fails with
        # KeyError(<thread id>): "Failed validating workflow" (CPython gh-91351,
        # temporalio/sdk-python#585). Seen twice in the full suite at the same test. Collected
        # here, just before the runner is handed over, no such garbage is waiting.
        gc.collect()
    modules = (*PASSTHROUGH_MODULES, *extra_passthrough)
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )
