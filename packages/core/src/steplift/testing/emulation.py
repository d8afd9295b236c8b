"""The emulator building blocks' old home: they live in `steplift.emulation` now.

Kept so that existing imports (``from steplift.testing.emulation import Faults``) stay valid.
"""

from __future__ import annotations

from steplift.emulation import (
    CONTROL_PREFIX,
    ControlAPI,
    Emulator,
    EmulatorBase,
    EmulatorControl,
    EmulatorMode,
    FaultDecider,
    FaultKind,
    Faults,
    JobProcess,
    LocalServer,
    NodeGroup,
    RecordedRequest,
    RequestLog,
    ScriptStep,
    StartResponse,
    WSGIApp,
    export_lines,
    free_port,
    group_alive,
    resolve_command,
    serve_until_interrupted,
    wait_until,
)

__all__ = [
    "CONTROL_PREFIX",
    "ControlAPI",
    "Emulator",
    "EmulatorBase",
    "EmulatorControl",
    "EmulatorMode",
    "FaultDecider",
    "FaultKind",
    "Faults",
    "JobProcess",
    "LocalServer",
    "NodeGroup",
    "RecordedRequest",
    "RequestLog",
    "ScriptStep",
    "StartResponse",
    "WSGIApp",
    "export_lines",
    "free_port",
    "group_alive",
    "resolve_command",
    "serve_until_interrupted",
    "wait_until",
]
