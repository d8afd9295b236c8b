"""WSGI layer in front of moto: records calls, injects faults, serves training jobs.

SageMaker and CloudWatch Logs calls are recognised by their `X-Amz-Target` header. Every client
call of those two services is recorded; SageMaker calls are then subject to the fault decider;
training-job operations are answered by `TrainingJobService`, everything else goes to moto.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from steplift.testing.emulation import FaultKind

from .awsjson import (
    INTERNAL_ENVIRON_KEY,
    AwsError,
    parse_params,
    parse_target,
    read_body,
    respond,
    respond_error,
)
from .service import TrainingJobService

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Recorder(Protocol):
    def record(self, service: str, operation: str, params: dict[str, Any]) -> None: ...

    def decide_fault(self, operation: str) -> FaultKind | None: ...


class SageMakerLayer:
    """The emulator's WSGI app around moto's."""

    def __init__(self, emulator: _Recorder, service: TrainingJobService, moto_app: WSGIApp) -> None:
        self.emulator = emulator
        self.service = service
        self.moto_app = moto_app
        self._errors = itertools.count()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = parse_target(environ)
        if target is None or environ.get(INTERNAL_ENVIRON_KEY):
            return self.moto_app(environ, start_response)
        service, operation = target
        try:
            params = parse_params(read_body(environ))
        except AwsError as error:
            return respond_error(start_response, error)
        self.emulator.record(service, operation, params)
        if service != "sagemaker":
            return self.moto_app(environ, start_response)
        fault = self.emulator.decide_fault(operation)
        if fault is not None:
            return respond_error(start_response, self._fault_error(fault))
        handler = self.service.handlers.get(operation)
        if handler is None:
            return self.moto_app(environ, start_response)
        try:
            answer = handler(params)
        except AwsError as error:
            return respond_error(start_response, error)
        if answer is None:
            return self.moto_app(environ, start_response)
        return respond(start_response, 200, answer)

    def _fault_error(self, fault: FaultKind) -> AwsError:
        if fault == "throttle":
            return AwsError("ThrottlingException", "Rate exceeded", 400)
        # Alternate the two 5xx answers AWS gives, so clients meet both.
        if next(self._errors) % 2 == 0:
            return AwsError("InternalFailure", "An internal error has occurred.", 500)
        return AwsError("ServiceUnavailable", "Service is unavailable.", 503)
