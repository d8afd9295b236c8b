"""Property tests: any config, option or name is either accepted or refused with one
ConfigError that says where, and nothing is submitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steplift.config import OperatorEntry, parse_config, validate_operator
from steplift.errors import ConfigError
from steplift.runs import check_name
from steplift.sdk import make_options

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
local_keys = st.sampled_from(
    ["root", "working_dir", "environment", "max_runtime", "max_queue_time", "flavor", "rooot", ""]
)
operator_tables = st.dictionaries(local_keys | st.text(max_size=10), values, max_size=5)
documents = st.dictionaries(
    st.sampled_from(["default_operator", "operators", "colour"]),
    values | st.dictionaries(st.text(max_size=10), operator_tables, max_size=3),
    max_size=3,
)


def one_line_config_error(error: ConfigError, file: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert text.startswith(file), text


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
def test_any_config_document_is_parsed_or_refused_with_one_config_error(
    document: dict[str, Any],
) -> None:
    try:
        config = parse_config(document, source="steplift.toml")
    except ConfigError as error:
        one_line_config_error(error, "steplift.toml")
        return
    for entry in config.operators.values():
        if entry.flavor != "local":
            continue
        try:
            validate_operator(entry)
        except ConfigError as error:
            one_line_config_error(error, "steplift.toml")
            assert error.operator == entry.name and error.field


@settings(max_examples=300)
@given(operator_tables)
def test_any_local_operator_table_is_valid_or_names_the_field(fields: dict[str, Any]) -> None:
    fields.pop("flavor", None)
    entry = OperatorEntry("gpu", "local", fields, "steplift.toml")
    try:
        validate_operator(entry)
    except ConfigError as error:
        one_line_config_error(error, "steplift.toml")
        names = {key if key else '""' for key in fields}
        assert error.field, str(error)
        assert any(error.field == name or error.field.startswith(name + ".") for name in names)


@settings(max_examples=300)
@given(st.text(max_size=140))
def test_any_name_is_accepted_or_refused_with_the_value(name: str) -> None:
    try:
        assert check_name("run", name) == name
    except ConfigError as error:
        assert error.field == "run" and repr(name) in str(error)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["gpu", "cpu", "memory_gb", "nodes", "disk_gb", "spot", "gpus"]),
        values,
        max_size=4,
    ),
    st.one_of(st.none(), st.floats(), st.integers()),
    st.one_of(st.integers(), st.floats(), st.text(max_size=3)),
)
def test_any_step_options_are_accepted_or_refused_with_the_field(
    resources: dict[str, Any], max_runtime: Any, retries: Any
) -> None:
    try:
        make_options(resources=resources, max_runtime=max_runtime, retries=retries)
    except ConfigError as error:
        assert error.field and error.field.split(".")[0] in {"resources", "max_runtime", "retries"}
        assert "\n" not in str(error)


def test_refused_input_submits_nothing(isolated_steplift: Path) -> None:
    import steplift

    with pytest.raises(ConfigError):
        steplift.run_command(["true"], run="bad run name")
    with pytest.raises(ConfigError):
        steplift.run_command(["true"], run="ok", max_runtime=-1)
    assert not (isolated_steplift / ".steplift" / "local" / "jobs").exists()
