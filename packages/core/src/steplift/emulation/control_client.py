"""`EmulatorControl`: the client of an emulator's `/_steplift/` control API, over HTTP.

For a test or tool in another process than the emulator (`steplift emulator` in a shell).
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from steplift.emulation.control import CONTROL_PREFIX
from steplift.emulation.faults import Faults
from steplift.emulation.request_log import RecordedRequest
from steplift.emulation.scripts import ScriptStep

__all__ = ["EmulatorControl"]

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


class EmulatorControl:
    """Client of the `/_steplift/` control API of an emulator running on 127.0.0.1."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "http" or parsed.hostname not in _LOCAL_HOSTS:
            raise ValueError(f"emulators are only reached on http://127.0.0.1, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Never route a local control call through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def health(self) -> dict[str, Any]:
        """The emulator's health answer ({"status": "ok", "mode": ...})."""
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def faults(self) -> Faults:
        """The faults in force."""
        return Faults.from_dict(self._call("GET", "faults"))

    def set_faults(self, faults: Faults) -> Faults:
        """Put these faults in force; returns them as the emulator holds them."""
        return Faults.from_dict(self._call("POST", "faults", faults.to_dict()))

    def requests(self, operation: str | None = None) -> list[RecordedRequest]:
        """The request log (optionally only one operation)."""
        route = "requests" + (f"?operation={urllib.parse.quote(operation)}" if operation else "")
        return [RecordedRequest(**item) for item in self._call("GET", route)["requests"]]

    def reset(self) -> None:
        """Clear faults, scripts and the request log."""
        self._call("POST", "reset", {})

    def preempt(self, job_id: str) -> None:
        """Preempt a running spot job."""
        self._call("POST", f"jobs/{urllib.parse.quote(job_id, safe='')}/preempt", {})

    def kill_node(self, job_id: str, node: int) -> None:
        """Lose one node (0-based) of a running job."""
        self._call("POST", f"jobs/{urllib.parse.quote(job_id, safe='')}/kill-node", {"node": node})

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Set the scripted steps of one job, or the default ones when job_id is None."""
        body = {"steps": [dataclasses.asdict(ScriptStep.parse(step)) for step in steps]}
        route = "script" if job_id is None else f"jobs/{urllib.parse.quote(job_id, safe='')}/script"
        self._call("POST", route, body)

    def wait_until_healthy(self, timeout: float = 10.0) -> dict[str, Any]:
        """Poll health until it answers (bounded by `timeout`); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except (OSError, RuntimeError):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"emulator at {self.base_url} not healthy") from None
                time.sleep(0.05)

    def _call(self, method: str, route: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{CONTROL_PREFIX}{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            error.close()
            raise RuntimeError(
                f"control call {method} {route} failed: {error.code} {detail}"
            ) from None
