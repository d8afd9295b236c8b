"""Cloud-agnostic building blocks of every steplift cloud emulator, and how to use one.

An emulator serves one cloud's real API on 127.0.0.1 so that the cloud's unmodified SDK
client talks to it, and runs each job as local processes (or walks it through scripted
statuses). This package holds what all of them share, one job per module:

- `protocol`: the `Emulator` protocol every emulator implements, and `EmulatorMode`
- `base`: `EmulatorBase`, the shared state (faults, request log, context manager)
- `faults`: `Faults` to inject and the deterministic `FaultDecider`
- `request_log`: `RequestLog` of every API call clients made
- `scripts`: `ScriptStep`, a step of a scripted job
- `processes`: `JobProcess`, a job's command as a local process group; `group_alive`
- `images`: `ImageRegistry`, image URIs as local Python environments (else the stock image)
- `sandbox`: `Sandbox` and its `Container`s, starting a job's node as a container would
- `node_group`: `NodeGroup`, the nodes of a multi-node job ending together
- `server`: `LocalServer`, serving a WSGI app on 127.0.0.1
- `control`: the `/_steplift/` control API (`ControlAPI`); `control_client`: its client
- `operators`: `emulated_operator` and `operator_table`, pointing steplift at an emulator
- `foreground`: `serve_until_interrupted`, what `steplift emulator <cloud>` runs
- `waiting`: `wait_until`

Standard library only: the core wheel must import no cloud SDK and no web framework.
"""

from __future__ import annotations

from steplift.cluster import free_port
from steplift.emulation.base import EmulatorBase
from steplift.emulation.control import CONTROL_PREFIX, ControlAPI
from steplift.emulation.control_client import EmulatorControl
from steplift.emulation.faults import FaultDecider, FaultKind, Faults
from steplift.emulation.foreground import export_lines, serve_until_interrupted
from steplift.emulation.images import Image, ImageRegistry, parse_image_option
from steplift.emulation.node_group import NodeGroup
from steplift.emulation.operators import emulated_operator, operator_table
from steplift.emulation.processes import JobProcess, group_alive, resolve_command
from steplift.emulation.protocol import Emulator, EmulatorMode
from steplift.emulation.request_log import RecordedRequest, RequestLog
from steplift.emulation.sandbox import Container, ContainerRuntime, HostRuntime, Launch, Sandbox
from steplift.emulation.scripts import ScriptStep
from steplift.emulation.server import LocalServer, StartResponse, WSGIApp
from steplift.emulation.waiting import wait_until

__all__ = [
    "CONTROL_PREFIX",
    "Container",
    "ContainerRuntime",
    "ControlAPI",
    "Emulator",
    "EmulatorBase",
    "EmulatorControl",
    "EmulatorMode",
    "FaultDecider",
    "FaultKind",
    "Faults",
    "HostRuntime",
    "Image",
    "ImageRegistry",
    "JobProcess",
    "Launch",
    "LocalServer",
    "NodeGroup",
    "RecordedRequest",
    "RequestLog",
    "Sandbox",
    "ScriptStep",
    "StartResponse",
    "WSGIApp",
    "emulated_operator",
    "export_lines",
    "free_port",
    "group_alive",
    "operator_table",
    "parse_image_option",
    "resolve_command",
    "serve_until_interrupted",
    "wait_until",
]
