"""GPU requests mapped to Vertex AI machine specs.

``"A100:8"`` becomes ``a2-highgpu-8g`` with eight ``NVIDIA_TESLA_A100``. The tables follow
Google's published GPU machine families: T4, V100, P100 and P4 attach to N1 machines; L4 is
built into G2, A100 40 GB into A2 high/mega, A100 80 GB into A2 ultra, H100 into A3 high/mega.
An impossible request is refused with what does exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from steplift.errors import ConfigError
from steplift.models import parse_gpu

if TYPE_CHECKING:
    from steplift.models import StepRunInfo
    from steplift_vertex.config import VertexStepOperatorConfig

ACCELERATOR_ENUM: dict[str, int] = {
    "NVIDIA_TESLA_K80": 1,
    "NVIDIA_TESLA_P100": 2,
    "NVIDIA_TESLA_V100": 3,
    "NVIDIA_TESLA_P4": 4,
    "NVIDIA_TESLA_T4": 5,
    "NVIDIA_TESLA_A100": 8,
    "NVIDIA_A100_80GB": 9,
    "NVIDIA_L4": 11,
    "NVIDIA_H100_80GB": 13,
    "NVIDIA_H100_MEGA_80GB": 14,
    "NVIDIA_H200_141GB": 15,
}
"""Vertex ``AcceleratorType`` names and their wire numbers (aiplatform v1)."""

GPU_ALIASES: dict[str, str] = {
    "T4": "NVIDIA_TESLA_T4",
    "V100": "NVIDIA_TESLA_V100",
    "P100": "NVIDIA_TESLA_P100",
    "P4": "NVIDIA_TESLA_P4",
    "L4": "NVIDIA_L4",
    "A100": "NVIDIA_TESLA_A100",
    "A100-40GB": "NVIDIA_TESLA_A100",
    "A100-80GB": "NVIDIA_A100_80GB",
    "H100": "NVIDIA_H100_80GB",
    "H100-80GB": "NVIDIA_H100_80GB",
    "H100-MEGA": "NVIDIA_H100_MEGA_80GB",
    "H200": "NVIDIA_H200_141GB",
}
"""Short GPU names accepted in ``gpu = "TYPE:COUNT"`` (full enum names work too)."""

# N1 machines take attached GPUs; the vCPU ceiling depends on the GPU model and count.
_N1_SIZES = (4, 8, 16, 32, 64, 96)
_N1_MAX_VCPUS: dict[str, dict[int, int]] = {
    "NVIDIA_TESLA_T4": {1: 48, 2: 48, 4: 96},
    "NVIDIA_TESLA_V100": {1: 12, 2: 24, 4: 48, 8: 96},
    "NVIDIA_TESLA_P100": {1: 16, 2: 32, 4: 96},
    "NVIDIA_TESLA_P4": {1: 24, 2: 48, 4: 96},
}

# Machines with built-in GPUs: machine type -> (accelerator, count, vCPUs, memory GB).
_BUILT_IN: dict[str, tuple[str, int, int, float]] = {
    **{f"g2-standard-{cpus}": ("NVIDIA_L4", 1, cpus, cpus * 4.0) for cpus in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("NVIDIA_L4", 2, 24, 96.0),
    "g2-standard-48": ("NVIDIA_L4", 4, 48, 192.0),
    "g2-standard-96": ("NVIDIA_L4", 8, 96, 384.0),
    "a2-highgpu-1g": ("NVIDIA_TESLA_A100", 1, 12, 85.0),
    "a2-highgpu-2g": ("NVIDIA_TESLA_A100", 2, 24, 170.0),
    "a2-highgpu-4g": ("NVIDIA_TESLA_A100", 4, 48, 340.0),
    "a2-highgpu-8g": ("NVIDIA_TESLA_A100", 8, 96, 680.0),
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16, 96, 1360.0),
    "a2-ultragpu-1g": ("NVIDIA_A100_80GB", 1, 12, 170.0),
    "a2-ultragpu-2g": ("NVIDIA_A100_80GB", 2, 24, 340.0),
    "a2-ultragpu-4g": ("NVIDIA_A100_80GB", 4, 48, 680.0),
    "a2-ultragpu-8g": ("NVIDIA_A100_80GB", 8, 96, 1360.0),
    "a3-highgpu-1g": ("NVIDIA_H100_80GB", 1, 26, 234.0),
    "a3-highgpu-2g": ("NVIDIA_H100_80GB", 2, 52, 468.0),
    "a3-highgpu-4g": ("NVIDIA_H100_80GB", 4, 104, 936.0),
    "a3-highgpu-8g": ("NVIDIA_H100_80GB", 8, 208, 1872.0),
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8, 208, 1872.0),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8, 224, 2952.0),
}

BUILT_IN_GPU_MACHINES = frozenset(_BUILT_IN)
"""Every machine type with built-in GPUs (the emulator's machine catalog takes them from here)."""

CPU_MACHINE_PREFIXES = ("n1-", "n2-", "n2d-", "e2-", "c2-", "c2d-", "m1-")
"""Families without built-in GPUs (only N1 takes attached ones)."""

DEFAULT_CPU_MACHINE = "n1-standard-4"


@dataclass(frozen=True)
class MachineSpec:
    """What goes into ``workerPoolSpecs[].machineSpec``."""

    machine_type: str
    accelerator_type: str | None = None
    accelerator_count: int = 0

    def as_fields(self) -> dict[str, object]:
        """The fields of the GAPIC ``MachineSpec`` message (enum by name)."""
        spec: dict[str, object] = {"machine_type": self.machine_type}
        if self.accelerator_type:
            spec["accelerator_type"] = self.accelerator_type
            spec["accelerator_count"] = self.accelerator_count
        return spec


def accelerator_name(gpu_type: str) -> str:
    """The Vertex accelerator enum name for a GPU type (short alias or enum name)."""
    name = gpu_type.upper()
    if name.replace("-", "_") in ACCELERATOR_ENUM:
        return name.replace("-", "_")
    if name in ACCELERATOR_ENUM:
        return name
    if name in GPU_ALIASES:
        return GPU_ALIASES[name]
    known = ", ".join(sorted(GPU_ALIASES))
    raise ValueError(f"unknown GPU type {gpu_type!r} on Vertex AI (known: {known})")


def _n1_for(accelerator: str, count: int, cpu: float | None, memory_gb: float | None) -> str:
    ceilings = _N1_MAX_VCPUS[accelerator]
    if count not in ceilings:
        raise ValueError(
            f"{accelerator} comes {_counts(ceilings)} per machine on Vertex AI, not {count}"
        )
    for size in _N1_SIZES:
        if size > ceilings[count]:
            break
        if (cpu is None or size >= cpu) and (memory_gb is None or size * 3.75 >= memory_gb):
            return f"n1-standard-{size}"
    raise ValueError(
        f"no n1-standard machine with {count} x {accelerator} has {cpu or 0:g} vCPUs and "
        f"{memory_gb or 0:g} GB (at most {ceilings[count]} vCPUs)"
    )


def _counts(values: dict[int, int] | set[int]) -> str:
    return ", ".join(str(count) for count in sorted(values))


def machine_for_gpu(
    gpu: str, *, cpu: float | None = None, memory_gb: float | None = None
) -> MachineSpec:
    """The smallest machine that carries ``gpu`` (``"TYPE:COUNT"``) and the CPU/memory asked."""
    gpu_type, count = parse_gpu(gpu)
    accelerator = accelerator_name(gpu_type)
    if accelerator in _N1_MAX_VCPUS:
        return MachineSpec(_n1_for(accelerator, count, cpu, memory_gb), accelerator, count)
    offers = [(machine, spec) for machine, spec in _BUILT_IN.items() if spec[0] == accelerator]
    if not offers:
        raise ValueError(f"{accelerator} is not offered for custom training on Vertex AI")
    matching = [
        (machine, spec)
        for machine, spec in offers
        if spec[1] == count
        and (cpu is None or spec[2] >= cpu)
        and (memory_gb is None or spec[3] >= memory_gb)
    ]
    if not matching:
        counts = {spec[1] for _, spec in offers}
        if count not in counts:
            raise ValueError(
                f"{accelerator} comes {_counts(counts)} per machine on Vertex AI, not {count}"
            )
        raise ValueError(
            f"no machine with {count} x {accelerator} has {cpu or 0:g} vCPUs and "
            f"{memory_gb or 0:g} GB"
        )
    machine, _ = min(matching, key=lambda item: (item[1][2], item[1][3]))
    return MachineSpec(machine, accelerator, count)


def check_machine(machine_type: str, accelerator: str | None, count: int | None) -> MachineSpec:
    """Validate an explicit machine type + accelerator pair as the service does."""
    if accelerator is not None:
        accelerator = accelerator_name(accelerator)
    built_in = _BUILT_IN.get(machine_type)
    if built_in is not None:
        expected, expected_count = built_in[0], built_in[1]
        if accelerator is None:
            accelerator = expected
        if accelerator != expected:
            raise ValueError(
                f"{machine_type} carries {expected}, not {accelerator}; for {accelerator} use "
                f"{', '.join(machines_for(accelerator)) or 'another region'}"
            )
        if count is None:
            count = expected_count
        if count != expected_count:
            raise ValueError(
                f"{machine_type} has exactly {expected_count} x {expected}, not {count}"
            )
        return MachineSpec(machine_type, accelerator, count)
    if machine_type.startswith(("a2-", "a3-", "g2-")):
        raise ValueError(f"unknown GPU machine type {machine_type!r}")
    if not machine_type.startswith(CPU_MACHINE_PREFIXES):
        raise ValueError(
            f"unknown machine family in {machine_type!r} (known: "
            f"{', '.join(p.rstrip('-') for p in CPU_MACHINE_PREFIXES)}, g2, a2, a3)"
        )
    if accelerator is None:
        if count:
            raise ValueError("accelerator_count needs an accelerator_type")
        return MachineSpec(machine_type)
    if accelerator not in _N1_MAX_VCPUS:
        raise ValueError(
            f"{accelerator} is not attachable to {machine_type}; it comes on "
            f"{', '.join(machines_for(accelerator)) or 'no machine for custom training'}"
        )
    if not machine_type.startswith("n1-"):
        raise ValueError(f"{accelerator} attaches to n1 machines only, not {machine_type}")
    count = 1 if count is None else count
    if count not in _N1_MAX_VCPUS[accelerator]:
        raise ValueError(
            f"{accelerator} comes {_counts(_N1_MAX_VCPUS[accelerator])} per machine, not {count}"
        )
    return MachineSpec(machine_type, accelerator, count)


def machines_for(accelerator: str) -> list[str]:
    """Machine types that carry ``accelerator`` (N1 for attachable ones)."""
    if accelerator in _N1_MAX_VCPUS:
        return ["n1-standard-*"]
    return [machine for machine, spec in _BUILT_IN.items() if spec[0] == accelerator]


def step_machine(config: VertexStepOperatorConfig, info: StepRunInfo) -> MachineSpec:
    """The machine of a step: the step's GPU request, else the config's machine or GPU.

    ConfigError (naming the step's field or the config's) for a machine Vertex AI lacks.
    """
    resources = info.resources
    try:
        if resources.gpu:
            return machine_for_gpu(resources.gpu, cpu=resources.cpu, memory_gb=resources.memory_gb)
    except ValueError as error:
        raise ConfigError(
            str(error), field="resources.gpu", value=resources.gpu, has_value=True
        ) from None
    if config.gpu:
        try:
            return machine_for_gpu(config.gpu, cpu=resources.cpu, memory_gb=resources.memory_gb)
        except ValueError as error:  # the config's GPU exists: the step's CPU/memory not
            raise ConfigError(
                str(error),
                field="resources",
                value=f"cpu={resources.cpu}, memory_gb={resources.memory_gb}",
                has_value=True,
            ) from None
    if config.machine_type:
        return check_machine(config.machine_type, config.accelerator_type, config.accelerator_count)
    return MachineSpec(DEFAULT_CPU_MACHINE)
