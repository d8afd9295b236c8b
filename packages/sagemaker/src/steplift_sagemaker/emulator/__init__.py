"""Local SageMaker emulator: moto's server plus steplift's training-job layer.

`SageMakerEmulator` serves SageMaker, S3 and CloudWatch Logs on 127.0.0.1 for the unmodified
boto3 client; `python -m steplift_sagemaker.emulator` (or `main`) runs it in the foreground.
"""

from .cli import main
from .server import SageMakerEmulator

__all__ = ["SageMakerEmulator", "main"]
