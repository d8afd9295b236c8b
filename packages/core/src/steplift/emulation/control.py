"""The `/_steplift/` control API an emulator serves beside its cloud API (server side).

`ControlAPI` wraps the cloud API's WSGI app: requests under `CONTROL_PREFIX` drive the
emulator (faults, request log, reset, preempt, kill-node, scripts), the rest pass through.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import Any

from steplift.emulation.faults import Faults
from steplift.emulation.protocol import Emulator
from steplift.emulation.server import StartResponse, WSGIApp

__all__ = ["CONTROL_PREFIX", "ControlAPI"]

CONTROL_PREFIX = "/_steplift/"
"""Path prefix under which every emulator serves its control API."""


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
}


class ControlAPI:
    """WSGI wrapper serving `/_steplift/...` from an emulator and passing the rest to `app`.

    Routes: GET health; GET/POST faults; GET requests[?operation=X]; POST reset;
    POST jobs/<id>/preempt; POST jobs/<id>/kill-node ({"node": R}); POST jobs/<id>/script and
    POST script ({"steps": [...]}).
    """

    def __init__(self, emulator: Emulator, app: WSGIApp) -> None:
        self.emulator = emulator
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self.app(environ, start_response)
        try:
            status, body = self._route(environ, path[len(CONTROL_PREFIX) :].strip("/"))
        except _ControlError as error:
            status, body = error.status, {"error": str(error)}
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {_STATUS_TEXT.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def _route(self, environ: dict[str, Any], route: str) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD", "GET")
        parts = route.split("/")
        emulator = self.emulator
        if route == "health" and method == "GET":
            return 200, {"status": "ok", "mode": emulator.mode}
        if route == "faults" and method == "GET":
            return 200, emulator.faults.to_dict()
        if route == "faults" and method == "POST":
            try:
                emulator.set_faults(Faults.from_dict(_json_object(environ)))
            except (TypeError, ValueError) as error:
                raise _ControlError(400, str(error)) from error
            return 200, emulator.faults.to_dict()
        if route == "requests" and method == "GET":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            operation = query.get("operation", [None])[0]
            items = emulator.requests.filter(operation) if operation else emulator.requests.list()
            return 200, {"requests": [item.to_dict() for item in items]}
        if route == "reset" and method == "POST":
            emulator.reset()
            return 200, {"status": "ok"}
        if route == "script" and method == "POST":
            return self._script(None, environ)
        if len(parts) == 3 and parts[0] == "jobs" and method == "POST":
            if parts[2] == "preempt":
                try:
                    emulator.preempt(parts[1])
                except KeyError as error:
                    raise _ControlError(404, f"no such job: {parts[1]}") from error
                except ValueError as error:
                    raise _ControlError(409, str(error)) from error
                return 200, {"status": "ok"}
            if parts[2] == "kill-node":
                node = _json_object(environ).get("node")
                if not isinstance(node, int) or isinstance(node, bool):
                    raise _ControlError(400, 'body must be {"node": <0-based node rank>}')
                try:
                    emulator.kill_node(parts[1], node)
                except KeyError as error:
                    raise _ControlError(404, f"no such job: {parts[1]}") from error
                except ValueError as error:
                    raise _ControlError(409, str(error)) from error
                return 200, {"status": "ok"}
            if parts[2] == "script":
                return self._script(parts[1], environ)
        raise _ControlError(404, f"no control route {method} {CONTROL_PREFIX}{route}")

    def _script(self, job_id: str | None, environ: dict[str, Any]) -> tuple[int, Any]:
        steps = _json_object(environ).get("steps")
        if not isinstance(steps, list):
            raise _ControlError(400, 'body must be {"steps": [...]}')
        try:
            self.emulator.script(job_id, steps)
        except ValueError as error:
            raise _ControlError(400, str(error)) from error
        return 200, {"status": "ok"}


def _json_object(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError as error:
        raise _ControlError(400, f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise _ControlError(400, "body must be a JSON object")
    return data
