"""GPU requests to SageMaker training instance types."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from steplift.errors import ConfigError
from steplift.models import StepRunInfo, parse_gpu

if TYPE_CHECKING:
    from steplift_sagemaker.config import SageMakerStepOperatorConfig

# GPU type -> {GPUs per instance: the smallest training instance type with that many}.
GPU_INSTANCE_TYPES: dict[str, dict[int, str]] = {
    "T4": {1: "ml.g4dn.xlarge", 4: "ml.g4dn.12xlarge"},
    "A10G": {1: "ml.g5.xlarge", 4: "ml.g5.12xlarge", 8: "ml.g5.48xlarge"},
    "L4": {1: "ml.g6.xlarge", 4: "ml.g6.12xlarge", 8: "ml.g6.48xlarge"},
    "V100": {1: "ml.p3.2xlarge", 4: "ml.p3.8xlarge", 8: "ml.p3.16xlarge"},
    "A100": {8: "ml.p4d.24xlarge"},
    "H100": {1: "ml.p5.4xlarge", 8: "ml.p5.48xlarge"},
}

DEFAULT_CPU_INSTANCE_TYPE = "ml.m5.xlarge"

# The SageMaker API's TrainingInstanceType enum as of botocore 1.44.8, so that validating a
# config needs no SDK import; a type newer than this table is looked up in the installed
# botocore's service model (see known_instance_types).
TRAINING_INSTANCE_TYPES: frozenset[str] = frozenset(
    [
        "ml.c4.2xlarge",
        "ml.c4.4xlarge",
        "ml.c4.8xlarge",
        "ml.c4.xlarge",
        "ml.c5.18xlarge",
        "ml.c5.2xlarge",
        "ml.c5.4xlarge",
        "ml.c5.9xlarge",
        "ml.c5.xlarge",
        "ml.c5n.18xlarge",
        "ml.c5n.2xlarge",
        "ml.c5n.4xlarge",
        "ml.c5n.9xlarge",
        "ml.c5n.xlarge",
        "ml.c6i.12xlarge",
        "ml.c6i.16xlarge",
        "ml.c6i.24xlarge",
        "ml.c6i.2xlarge",
        "ml.c6i.32xlarge",
        "ml.c6i.4xlarge",
        "ml.c6i.8xlarge",
        "ml.c6i.xlarge",
        "ml.c7i-flex.12xlarge",
        "ml.c7i-flex.16xlarge",
        "ml.c7i-flex.2xlarge",
        "ml.c7i-flex.4xlarge",
        "ml.c7i-flex.8xlarge",
        "ml.c7i-flex.xlarge",
        "ml.c7i.12xlarge",
        "ml.c7i.16xlarge",
        "ml.c7i.24xlarge",
        "ml.c7i.2xlarge",
        "ml.c7i.48xlarge",
        "ml.c7i.4xlarge",
        "ml.c7i.8xlarge",
        "ml.c7i.large",
        "ml.c7i.xlarge",
        "ml.c8i-flex.12xlarge",
        "ml.c8i-flex.16xlarge",
        "ml.c8i-flex.2xlarge",
        "ml.c8i-flex.4xlarge",
        "ml.c8i-flex.8xlarge",
        "ml.c8i-flex.xlarge",
        "ml.c8i.12xlarge",
        "ml.c8i.16xlarge",
        "ml.c8i.24xlarge",
        "ml.c8i.2xlarge",
        "ml.c8i.32xlarge",
        "ml.c8i.48xlarge",
        "ml.c8i.4xlarge",
        "ml.c8i.8xlarge",
        "ml.c8i.96xlarge",
        "ml.c8i.xlarge",
        "ml.g4dn.12xlarge",
        "ml.g4dn.16xlarge",
        "ml.g4dn.2xlarge",
        "ml.g4dn.4xlarge",
        "ml.g4dn.8xlarge",
        "ml.g4dn.xlarge",
        "ml.g5.12xlarge",
        "ml.g5.16xlarge",
        "ml.g5.24xlarge",
        "ml.g5.2xlarge",
        "ml.g5.48xlarge",
        "ml.g5.4xlarge",
        "ml.g5.8xlarge",
        "ml.g5.xlarge",
        "ml.g6.12xlarge",
        "ml.g6.16xlarge",
        "ml.g6.24xlarge",
        "ml.g6.2xlarge",
        "ml.g6.48xlarge",
        "ml.g6.4xlarge",
        "ml.g6.8xlarge",
        "ml.g6.xlarge",
        "ml.g6e.12xlarge",
        "ml.g6e.16xlarge",
        "ml.g6e.24xlarge",
        "ml.g6e.2xlarge",
        "ml.g6e.48xlarge",
        "ml.g6e.4xlarge",
        "ml.g6e.8xlarge",
        "ml.g6e.xlarge",
        "ml.g7.12xlarge",
        "ml.g7.24xlarge",
        "ml.g7.2xlarge",
        "ml.g7.48xlarge",
        "ml.g7.4xlarge",
        "ml.g7.8xlarge",
        "ml.g7e.12xlarge",
        "ml.g7e.24xlarge",
        "ml.g7e.2xlarge",
        "ml.g7e.48xlarge",
        "ml.g7e.4xlarge",
        "ml.g7e.8xlarge",
        "ml.m4.10xlarge",
        "ml.m4.16xlarge",
        "ml.m4.2xlarge",
        "ml.m4.4xlarge",
        "ml.m4.xlarge",
        "ml.m5.12xlarge",
        "ml.m5.24xlarge",
        "ml.m5.2xlarge",
        "ml.m5.4xlarge",
        "ml.m5.large",
        "ml.m5.xlarge",
        "ml.m6i.12xlarge",
        "ml.m6i.16xlarge",
        "ml.m6i.24xlarge",
        "ml.m6i.2xlarge",
        "ml.m6i.32xlarge",
        "ml.m6i.4xlarge",
        "ml.m6i.8xlarge",
        "ml.m6i.large",
        "ml.m6i.xlarge",
        "ml.m7i-flex.12xlarge",
        "ml.m7i-flex.16xlarge",
        "ml.m7i-flex.2xlarge",
        "ml.m7i-flex.4xlarge",
        "ml.m7i-flex.8xlarge",
        "ml.m7i-flex.large",
        "ml.m7i-flex.xlarge",
        "ml.m7i.12xlarge",
        "ml.m7i.16xlarge",
        "ml.m7i.24xlarge",
        "ml.m7i.2xlarge",
        "ml.m7i.48xlarge",
        "ml.m7i.4xlarge",
        "ml.m7i.8xlarge",
        "ml.m7i.large",
        "ml.m7i.xlarge",
        "ml.m8i-flex.12xlarge",
        "ml.m8i-flex.16xlarge",
        "ml.m8i-flex.2xlarge",
        "ml.m8i-flex.4xlarge",
        "ml.m8i-flex.8xlarge",
        "ml.m8i-flex.large",
        "ml.m8i-flex.xlarge",
        "ml.m8i.12xlarge",
        "ml.m8i.16xlarge",
        "ml.m8i.24xlarge",
        "ml.m8i.2xlarge",
        "ml.m8i.32xlarge",
        "ml.m8i.48xlarge",
        "ml.m8i.4xlarge",
        "ml.m8i.8xlarge",
        "ml.m8i.96xlarge",
        "ml.m8i.large",
        "ml.m8i.xlarge",
        "ml.p2.16xlarge",
        "ml.p2.8xlarge",
        "ml.p2.xlarge",
        "ml.p3.16xlarge",
        "ml.p3.2xlarge",
        "ml.p3.8xlarge",
        "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.p4de.24xlarge",
        "ml.p5.48xlarge",
        "ml.p5.4xlarge",
        "ml.p5e.48xlarge",
        "ml.p5en.48xlarge",
        "ml.p6-b200.48xlarge",
        "ml.p6-b300.48xlarge",
        "ml.p6e-gb200.36xlarge",
        "ml.r5.12xlarge",
        "ml.r5.16xlarge",
        "ml.r5.24xlarge",
        "ml.r5.2xlarge",
        "ml.r5.4xlarge",
        "ml.r5.8xlarge",
        "ml.r5.large",
        "ml.r5.xlarge",
        "ml.r5d.12xlarge",
        "ml.r5d.16xlarge",
        "ml.r5d.24xlarge",
        "ml.r5d.2xlarge",
        "ml.r5d.4xlarge",
        "ml.r5d.8xlarge",
        "ml.r5d.large",
        "ml.r5d.xlarge",
        "ml.r6i.12xlarge",
        "ml.r6i.16xlarge",
        "ml.r6i.24xlarge",
        "ml.r6i.2xlarge",
        "ml.r6i.32xlarge",
        "ml.r6i.4xlarge",
        "ml.r6i.8xlarge",
        "ml.r6i.large",
        "ml.r6i.xlarge",
        "ml.r7i.12xlarge",
        "ml.r7i.16xlarge",
        "ml.r7i.24xlarge",
        "ml.r7i.2xlarge",
        "ml.r7i.48xlarge",
        "ml.r7i.4xlarge",
        "ml.r7i.8xlarge",
        "ml.r7i.large",
        "ml.r7i.xlarge",
        "ml.r8i-flex.12xlarge",
        "ml.r8i-flex.16xlarge",
        "ml.r8i-flex.2xlarge",
        "ml.r8i-flex.4xlarge",
        "ml.r8i-flex.8xlarge",
        "ml.r8i-flex.large",
        "ml.r8i-flex.xlarge",
        "ml.r8i.12xlarge",
        "ml.r8i.16xlarge",
        "ml.r8i.24xlarge",
        "ml.r8i.2xlarge",
        "ml.r8i.32xlarge",
        "ml.r8i.48xlarge",
        "ml.r8i.4xlarge",
        "ml.r8i.8xlarge",
        "ml.r8i.96xlarge",
        "ml.r8i.large",
        "ml.r8i.xlarge",
        "ml.t3.2xlarge",
        "ml.t3.large",
        "ml.t3.medium",
        "ml.t3.xlarge",
        "ml.trn1.2xlarge",
        "ml.trn1.32xlarge",
        "ml.trn1n.32xlarge",
        "ml.trn2.48xlarge",
    ]
)


def available_gpus() -> list[str]:
    """Every GPU request this flavor can serve, e.g. ``A10G:4``."""
    return [f"{gpu}:{count}" for gpu, counts in GPU_INSTANCE_TYPES.items() for count in counts]


def gpus_of_instance_type(instance_type: str) -> int:
    """GPUs of a training instance type this table knows (0: a CPU type, or one it lacks)."""
    for counts in GPU_INSTANCE_TYPES.values():
        for count, known in counts.items():
            if known == instance_type:
                return count
    return 0


def instance_type_for_gpu(request: str, field: str = "gpu") -> str:
    """The training instance type for a GPU request; ConfigError lists what exists."""
    try:
        gpu_type, count = parse_gpu(request)
    except ValueError as error:
        raise ConfigError(str(error), field=field, value=request, has_value=True) from None
    counts = GPU_INSTANCE_TYPES.get(gpu_type)
    if not counts or count not in counts:
        raise ConfigError(
            f"SageMaker has no training instance with {count} x {gpu_type} "
            f"(available: {', '.join(available_gpus())})",
            field=field,
            value=request,
            has_value=True,
        )
    return counts[count]


@cache
def known_instance_types() -> frozenset[str]:
    """The table above plus whatever the installed botocore's service model adds."""
    try:
        from botocore.loaders import Loader
    except ImportError:
        return TRAINING_INSTANCE_TYPES
    model = Loader().load_service_model("sagemaker", "service-2")
    return TRAINING_INSTANCE_TYPES | frozenset(model["shapes"]["TrainingInstanceType"]["enum"])


def check_instance_type(instance_type: str, field: str = "instance_type") -> str:
    """Refuse an instance type SageMaker training does not know."""
    if instance_type in TRAINING_INSTANCE_TYPES:
        return instance_type
    known = known_instance_types()
    if instance_type not in known:
        family = instance_type.split(".")[:2]
        close = sorted(t for t in known if t.split(".")[:2] == family)
        example = " (e.g. ml.g5.xlarge, ml.m5.xlarge)"
        hint = f" (same family: {', '.join(close)})" if close else example
        raise ConfigError(
            f"not a SageMaker training instance type{hint}",
            field=field,
            value=instance_type,
            has_value=True,
        )
    return instance_type


def step_instance_type(config: SageMakerStepOperatorConfig, info: StepRunInfo) -> str:
    """The step's GPU request, else the config's instance_type, else its gpu, else CPU."""
    if info.resources.gpu:
        return instance_type_for_gpu(info.resources.gpu, field="resources.gpu")
    if config.instance_type:
        return check_instance_type(config.instance_type)
    if config.gpu:
        return instance_type_for_gpu(config.gpu)
    return DEFAULT_CPU_INSTANCE_TYPE
