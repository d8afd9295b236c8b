"""GPU requests → Azure VM sizes.

Azure ML runs a serverless job on one VM size per node. A GPU request such as ``"A100:1"`` is
mapped to the smallest size with exactly that many GPUs of that type; a request no size can
meet is refused with the list of what exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from steplift.errors import ConfigError
from steplift.models import Resources, parse_gpu


@dataclass(frozen=True)
class VmSize:
    """One Azure VM size: its GPUs, vCPUs and memory."""

    name: str
    gpu_type: str | None
    gpu_count: int
    vcpus: int
    memory_gb: float


# Sizes Azure ML serverless compute offers (whole GPUs only), smallest first per GPU type.
VM_SIZES: tuple[VmSize, ...] = (
    VmSize("Standard_DS3_v2", None, 0, 4, 14),
    VmSize("Standard_D4s_v3", None, 0, 4, 16),
    VmSize("Standard_E4s_v3", None, 0, 4, 32),
    VmSize("Standard_D8s_v3", None, 0, 8, 32),
    VmSize("Standard_D16s_v3", None, 0, 16, 64),
    VmSize("Standard_E16s_v3", None, 0, 16, 128),
    VmSize("Standard_NC4as_T4_v3", "T4", 1, 4, 28),
    VmSize("Standard_NC8as_T4_v3", "T4", 1, 8, 56),
    VmSize("Standard_NC16as_T4_v3", "T4", 1, 16, 110),
    VmSize("Standard_NC64as_T4_v3", "T4", 4, 64, 440),
    VmSize("Standard_NC6s_v3", "V100", 1, 6, 112),
    VmSize("Standard_NC12s_v3", "V100", 2, 12, 224),
    VmSize("Standard_NC24s_v3", "V100", 4, 24, 448),
    VmSize("Standard_ND40rs_v2", "V100", 8, 40, 672),
    VmSize("Standard_NV36ads_A10_v5", "A10", 1, 36, 440),
    VmSize("Standard_NV72ads_A10_v5", "A10", 2, 72, 880),
    VmSize("Standard_NC24ads_A100_v4", "A100", 1, 24, 220),
    VmSize("Standard_NC48ads_A100_v4", "A100", 2, 48, 440),
    VmSize("Standard_NC96ads_A100_v4", "A100", 4, 96, 880),
    VmSize("Standard_ND96asr_v4", "A100", 8, 96, 900),
    VmSize("Standard_NC40ads_H100_v5", "H100", 1, 40, 320),
    VmSize("Standard_NC80adis_H100_v5", "H100", 2, 80, 640),
    VmSize("Standard_ND96isr_H100_v5", "H100", 8, 96, 1900),
)
_BY_NAME = {size.name.lower(): size for size in VM_SIZES}


def vm_size(name: str) -> VmSize:
    """The VM size called ``name`` (case-insensitive); ValueError listing the known ones."""
    size = _BY_NAME.get(name.lower())
    if size is None:
        known = ", ".join(size.name for size in VM_SIZES)
        raise ValueError(f"unknown Azure VM size {name!r}; known sizes: {known}")
    return size


def known_gpu_types() -> list[str]:
    """GPU types some VM size offers."""
    return sorted({size.gpu_type for size in VM_SIZES if size.gpu_type})


def vm_size_for_gpu(gpu: str, cpu: float | None = None, memory_gb: float | None = None) -> VmSize:
    """The smallest VM size with exactly the GPUs asked for (and enough CPU and memory).

    ValueError naming what exists when nothing fits.
    """
    gpu_type, count = parse_gpu(gpu)
    of_type = [size for size in VM_SIZES if size.gpu_type == gpu_type]
    if not of_type:
        raise ValueError(
            f"no Azure VM size has {gpu_type} GPUs; GPU types: {', '.join(known_gpu_types())}"
        )
    counts = sorted({size.gpu_count for size in of_type})
    fitting = [
        size
        for size in of_type
        if size.gpu_count == count
        and (cpu is None or size.vcpus >= cpu)
        and (memory_gb is None or size.memory_gb >= memory_gb)
    ]
    if not fitting:
        options = ", ".join(
            f"{size.gpu_type}:{size.gpu_count} ({size.name}, {size.vcpus} vCPU, "
            f"{size.memory_gb:g} GB)"
            for size in of_type
        )
        raise ValueError(
            f"no Azure VM size has {count} {gpu_type} GPU(s)"
            + (f" with {cpu:g} vCPU" if cpu else "")
            + (f" and {memory_gb:g} GB" if memory_gb else "")
            + f"; {gpu_type} counts per VM: {', '.join(map(str, counts))}; sizes: {options}"
        )
    return fitting[0]


def vm_size_for_cpu(cpu: float | None, memory_gb: float | None) -> VmSize | None:
    """The smallest CPU-only size with enough CPU and memory (None when nothing is asked)."""
    if cpu is None and memory_gb is None:
        return None
    for size in VM_SIZES:
        if (
            size.gpu_type is None
            and size.vcpus >= (cpu or 0)
            and size.memory_gb >= (memory_gb or 0)
        ):
            return size
    raise ValueError(
        f"no CPU-only Azure VM size has {cpu or 0:g} vCPU and {memory_gb or 0:g} GB; the largest "
        "is Standard_E16s_v3 (16 vCPU, 128 GB)"
    )


def resolve_vm_size(resources: Resources) -> VmSize | None:
    """The VM size for a step's resources; ConfigError (field ``gpu``) when none fits."""
    try:
        if resources.gpu:
            return vm_size_for_gpu(resources.gpu, resources.cpu, resources.memory_gb)
        return vm_size_for_cpu(resources.cpu, resources.memory_gb)
    except ValueError as error:
        raise ConfigError(
            str(error),
            field="gpu" if resources.gpu else "cpu",
            value=resources.gpu or resources.cpu,
            has_value=True,
        ) from None
