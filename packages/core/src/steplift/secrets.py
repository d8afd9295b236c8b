"""Secrets: references in the config, values read inside the job.

An operator's ``secrets`` table maps environment variable names to references into the
provider's secret store (an AWS Secrets Manager ARN, a GCP Secret Manager version name, an
Azure Key Vault secret URI). Only the references travel with the job (``STEPLIFT_SECRETS``);
the entrypoint asks the resolvers registered in the ``steplift.secrets`` entry-point group for
the values and puts them in its own environment just before the step runs, so no value ever
appears in the job definition, in what the provider echoes back, or in steplift's output.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from typing import Protocol, runtime_checkable

from steplift.errors import ConfigError, StepliftError

SECRETS_GROUP = "steplift.secrets"
SECRETS_ENV = "STEPLIFT_SECRETS"


@runtime_checkable
class SecretResolver(Protocol):
    """Reads secrets of one provider's store (built with no arguments, inside the job)."""

    def handles(self, reference: str) -> bool:
        """True if ``reference`` points into this resolver's store."""

    def resolve(self, reference: str) -> str:
        """The secret's value."""


def installed_resolvers() -> list[SecretResolver]:
    """One instance of every installed resolver."""
    from importlib.metadata import entry_points

    resolvers = []
    for entry in entry_points(group=SECRETS_GROUP):
        resolver = entry.load()()
        if isinstance(resolver, SecretResolver):
            resolvers.append(resolver)
    return resolvers


def resolve_into(environment: MutableMapping[str, str] | None = None) -> list[str]:
    """Resolve the references in ``STEPLIFT_SECRETS`` into ``environment``; the names set."""
    environment = os.environ if environment is None else environment
    raw = environment.get(SECRETS_ENV)
    if not raw:
        return []
    references: dict[str, str] = json.loads(raw)
    resolvers = installed_resolvers()
    for name, reference in references.items():
        resolver = next((r for r in resolvers if r.handles(reference)), None)
        if resolver is None:
            raise ConfigError(
                f"no installed secret resolver reads {reference!r}; install the provider "
                "package of that store in the image",
                field=f"secrets.{name}",
            )
        try:
            environment[name] = resolver.resolve(reference)
        except Exception as error:  # name the secret, never a value
            raise StepliftError(
                f"could not read secret {name} from {reference}: {type(error).__name__}: {error}"
            ) from None
    return list(references)
