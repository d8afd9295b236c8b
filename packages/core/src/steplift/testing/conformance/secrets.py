"""Secret tests: a secret from the provider's store reaches the step, and its value travels
nowhere else (logs, requests, statuses, handles, the run index)."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.recording import Recorder

__all__ = ["SecretTests"]


class SecretTests(ConformanceBase):
    """Secrets from the provider's secret store."""

    def test_a_secret_reaches_the_step_and_nothing_else(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        value = f"conformance-secret-{uuid.uuid4().hex}"
        with_secret = backend.operator_with_secret(operator, "API_TOKEN", value)
        if with_secret is None:
            pytest.skip(f"the {self.flavor} flavor has no secret store")
        recorder = Recorder()
        launcher = StepLauncher(with_secret, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.secret_digest, ("API_TOKEN",), {})
        digest = launcher.run(spec, run=run, step="secret", options=StepOptions())
        assert digest == hashlib.sha256(value.encode()).hexdigest()
        assert "API_TOKEN is set: True" in recorder.lines
        handle = recorder.handle
        travelled = [
            "\n".join(recorder.lines),
            backend.recorded_text(),
            repr(with_secret.get_status(handle)),
            handle.model_dump_json(),
            *(path.read_text() for path in index.root.rglob("*.json")),
        ]
        assert all(value not in text for text in travelled), "the secret's value travelled"
