"""AWS Secrets Manager secrets for jobs (the ``steplift.secrets`` resolver of this package)."""

from __future__ import annotations

import re

SECRET_ARN = re.compile(r"^arn:aws[a-z\-]*:secretsmanager:[a-z0-9\-]+:\d{12}:secret:[\w/+=.@\-]+$")


class SecretsManagerResolver:
    """Reads ``arn:aws:secretsmanager:...`` secrets with the job's own AWS credentials."""

    def handles(self, reference: str) -> bool:
        return bool(SECRET_ARN.match(reference))

    def resolve(self, reference: str) -> str:
        from steplift_sagemaker.clients import make_client

        region = reference.split(":")[3]
        response = make_client("secretsmanager", region=region).get_secret_value(SecretId=reference)
        if "SecretString" in response:
            return str(response["SecretString"])
        return bytes(response["SecretBinary"]).decode()
