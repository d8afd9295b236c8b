"""The ``azureml`` flavor: registered in ``steplift.flavors``, imports no Azure SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from steplift.errors import ConfigError
from steplift.models import config_error_from
from steplift.operator import Flavor, StepOperator, StepOperatorConfig
from steplift_azureml.config import AzureMLStepOperatorConfig, FieldProblem


class AzureMLFlavor(Flavor):
    """Runs steps as Azure ML command jobs."""

    @property
    def name(self) -> str:
        return "azureml"

    @property
    def config_class(self) -> type[StepOperatorConfig]:
        return AzureMLStepOperatorConfig

    @property
    def implementation_class(self) -> type[StepOperator]:
        from steplift_azureml.operator import AzureMLStepOperator

        return AzureMLStepOperator

    def validate_config(
        self,
        fields: Mapping[str, Any],
        *,
        file: str | None = None,
        operator: str | None = None,
    ) -> StepOperatorConfig:
        try:
            return AzureMLStepOperatorConfig.model_validate(dict(fields))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            problem = first.get("ctx", {}).get("error")
            if isinstance(problem, FieldProblem):
                # A cross-field rule: name the field to change, not the whole table.
                raise ConfigError(
                    str(problem),
                    file=file,
                    operator=operator,
                    field=problem.field,
                    value=fields.get(problem.field),
                    has_value=problem.field in fields,
                ) from None
            raise config_error_from(error, file=file, operator=operator) from None
