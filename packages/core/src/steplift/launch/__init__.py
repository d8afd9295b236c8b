"""The launch engine: what :meth:`StepOperator.launch` runs, one job per module.

- ``policy``      :class:`LaunchPolicy`, the engine's tuning (the one piece a flavor sets)
- ``engine``      the launch itself: warm up, adopt or submit, watch, cancel on an interrupt
- ``submission``  receipts, adopting an attempt's job, a submit checked with ``find_job``
- ``watch``       the wait loop: status polls, shared log reads, the result signal, deadlines
- ``control``     the operator's calls as launches make them, and the engine's shared state
- ``calls``       the call pool that makes provider and store calls while launches run
- ``batching``    :class:`StatusBatcher`, one status call for many waiting launches
- ``patience``    transient errors waited out within the budget, then ``LostContact``
- ``paging``      a provider's list pages turned into statuses (used by ``get_statuses``)
- ``observer``    :class:`LaunchObserver`, what a launch reports while it runs
"""

from __future__ import annotations

from steplift.launch.policy import LaunchPolicy

__all__ = ["LaunchPolicy"]
