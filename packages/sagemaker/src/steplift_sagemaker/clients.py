"""boto3 clients, created lazily, with botocore's own retry machinery configured once; which
of their errors are worth asking again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_sagemaker.config import SageMakerStepOperatorConfig

MAX_ATTEMPTS = 5
TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
}


def make_client(
    service: str, config: SageMakerStepOperatorConfig | None = None, region: str | None = None
) -> Any:
    """A boto3 client for ``service``, from the operator config or from the environment."""
    import boto3
    from botocore.config import Config

    # botocore's "standard" mode retries throttling, 5xx and connection errors with jittered
    # exponential backoff, never a ValidationException. A create is safe to retry because
    # job names are deterministic: see SageMakerStepOperator.submit.
    attempts = config.max_attempts if config is not None else MAX_ATTEMPTS
    retries = Config(retries={"mode": "standard", "total_max_attempts": attempts})

    if config is None:
        session = boto3.session.Session(region_name=region)
        return session.client(service, config=retries)  # type: ignore[call-overload]
    secret = config.aws_secret_access_key
    session = boto3.session.Session(
        region_name=config.region,
        profile_name=config.profile,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=config.endpoint_url, config=retries
    )


def is_transient_error(error: Exception) -> bool:
    """Throttling, 5xx and lost connections that outlasted botocore's own retries."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return details.get("Code") in TRANSIENT_CODES or int(status) >= 500
    return False
