"""GPU requests to Vertex machine specs; impossible requests list what exists."""

from __future__ import annotations

import pytest

from steplift_vertex.resources import MachineSpec, check_machine, machine_for_gpu


@pytest.mark.parametrize(
    ("gpu", "cpu", "memory", "expected"),
    [
        ("A100:8", None, None, MachineSpec("a2-highgpu-8g", "NVIDIA_TESLA_A100", 8)),
        ("A100:16", None, None, MachineSpec("a2-megagpu-16g", "NVIDIA_TESLA_A100", 16)),
        ("A100-80GB:4", None, None, MachineSpec("a2-ultragpu-4g", "NVIDIA_A100_80GB", 4)),
        ("H100:8", None, None, MachineSpec("a3-highgpu-8g", "NVIDIA_H100_80GB", 8)),
        ("L4:1", None, None, MachineSpec("g2-standard-4", "NVIDIA_L4", 1)),
        ("L4:1", 10, None, MachineSpec("g2-standard-12", "NVIDIA_L4", 1)),
        ("L4:2", None, None, MachineSpec("g2-standard-24", "NVIDIA_L4", 2)),
        ("T4:1", None, None, MachineSpec("n1-standard-4", "NVIDIA_TESLA_T4", 1)),
        ("T4:2", 16, None, MachineSpec("n1-standard-16", "NVIDIA_TESLA_T4", 2)),
        ("V100:4", None, 100, MachineSpec("n1-standard-32", "NVIDIA_TESLA_V100", 4)),
        ("NVIDIA-TESLA-T4:4", None, None, MachineSpec("n1-standard-4", "NVIDIA_TESLA_T4", 4)),
    ],
)
def test_gpu_requests_map_to_the_smallest_fitting_machine(
    gpu: str, cpu: float | None, memory: float | None, expected: MachineSpec
) -> None:
    assert machine_for_gpu(gpu, cpu=cpu, memory_gb=memory) == expected


@pytest.mark.parametrize(
    ("gpu", "cpu", "words"),
    [
        ("A100:3", None, "1, 2, 4, 8, 16 per machine"),
        ("L4:3", None, "1, 2, 4, 8 per machine"),
        ("V100:16", None, "1, 2, 4, 8 per machine"),
        ("V100:1", 64, "at most 12 vCPUs"),
        ("RTX9090:1", None, "known: A100"),
    ],
)
def test_impossible_requests_say_what_exists(gpu: str, cpu: float | None, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        machine_for_gpu(gpu, cpu=cpu)
    assert words in str(caught.value)


def test_explicit_machines_are_checked_like_the_service() -> None:
    assert check_machine("a2-highgpu-1g", None, None).accelerator_count == 1
    assert check_machine("n1-highmem-8", None, None) == MachineSpec("n1-highmem-8")
    with pytest.raises(ValueError, match="attaches to n1 machines only"):
        check_machine("n2-standard-8", "NVIDIA_TESLA_T4", 1)
    with pytest.raises(ValueError, match="exactly 8"):
        check_machine("a3-highgpu-8g", "NVIDIA_H100_80GB", 4)
    with pytest.raises(ValueError, match="needs an accelerator_type"):
        check_machine("n1-standard-4", None, 2)
