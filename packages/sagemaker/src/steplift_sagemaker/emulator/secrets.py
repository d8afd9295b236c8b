"""The secret store SageMaker jobs read: moto's AWS Secrets Manager, on the emulator's endpoint.

A job resolves an ``arn:aws:secretsmanager:...`` reference with its own AWS credentials
(``steplift_sagemaker.secrets``); aimed at the emulator, that call reaches moto's Secrets
Manager. Its calls pass the emulator's layer as they are: they are not SageMaker traffic, so
they are neither recorded nor faulted, and no secret value ever enters the request log.
"""

from __future__ import annotations

from typing import Any


def put_secret(secretsmanager: Any, name: str, value: str) -> str:
    """Store ``value`` as secret ``name`` (a new version if it exists); returns its ARN."""
    try:
        answer = secretsmanager.create_secret(Name=name, SecretString=value)
    except secretsmanager.exceptions.ResourceExistsException:
        answer = secretsmanager.put_secret_value(SecretId=name, SecretString=value)
    return str(answer["ARN"])
