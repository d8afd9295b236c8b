"""The config file: where it is found, how operators are chosen, how errors read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from steplift.config import create_operator, load_config
from steplift.errors import ConfigError, FlavorNotFound
from steplift.flavors.local import LocalStepOperator, LocalStepOperatorConfig


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_no_config_means_the_local_flavor(isolated_steplift: Path) -> None:
    config = load_config()
    assert config.path is None
    assert config.choose(None) == "local"
    operator = create_operator()
    assert isinstance(operator, LocalStepOperator)


def test_steplift_toml_defines_and_chooses_operators(isolated_steplift: Path) -> None:
    write(
        isolated_steplift / "steplift.toml",
        """
default_operator = "fast"
[operators.fast]
flavor = "local"
root = "jobs-fast"
max_runtime = 60
[operators.slow]
flavor = "local"
""",
    )
    operator = create_operator()
    assert operator.name == "fast"
    assert isinstance(operator.config, LocalStepOperatorConfig)
    assert operator.config.max_runtime == 60
    assert isinstance(operator, LocalStepOperator)
    assert operator.root == isolated_steplift / "jobs-fast"
    assert create_operator("slow").name == "slow"


def test_environment_variable_overrides_the_default(
    isolated_steplift: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        isolated_steplift / "steplift.toml",
        'default_operator = "a"\n'
        '[operators.a]\nflavor = "local"\n'
        '[operators.b]\nflavor = "local"\n',
    )
    monkeypatch.setenv("STEPLIFT_OPERATOR", "b")
    assert create_operator().name == "b"
    assert create_operator("a").name == "a"  # an explicit choice still wins


def test_pyproject_tool_table_is_read(isolated_steplift: Path) -> None:
    write(
        isolated_steplift / "pyproject.toml",
        '[project]\nname = "x"\n[tool.steplift.operators.only]\nflavor = "local"\n',
    )
    config = load_config()
    assert config.path == str(isolated_steplift / "pyproject.toml")
    assert config.choose(None) == "only"  # a single operator is the default


def test_pyproject_without_steplift_table_is_ignored(isolated_steplift: Path) -> None:
    write(isolated_steplift / "pyproject.toml", '[project]\nname = "x"\n')
    assert load_config().path is None


def test_steplift_config_env_names_the_file(
    isolated_steplift: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "elsewhere.toml", '[operators.far]\nflavor = "local"\n')
    write(isolated_steplift / "steplift.toml", '[operators.near]\nflavor = "local"\n')
    monkeypatch.setenv("STEPLIFT_CONFIG", str(path))
    assert load_config().choose(None) == "far"
    monkeypatch.setenv("STEPLIFT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("default_operator = [", "not valid TOML"),
        ("colour = 1\n", "field 'colour': unknown key"),
        ("default_operator = 3\n", "field 'default_operator': must be a string (got 3)"),
        ('default_operator = "ghost"\n', "no operator named 'ghost'"),
        ("[operators.a]\nroot = 'x'\n", "operator 'a': field 'flavor'"),
        ('[operators."bad name"]\nflavor = "local"\n', "got 'bad name'"),
        (
            '[operators.a]\nflavor = "local"\nmax_runtime = -1\n',
            "operator 'a': field 'max_runtime': Input should be greater than 0 (got -1)",
        ),
        (
            '[operators.a]\nflavor = "local"\nrooot = "x"\n',
            "operator 'a': field 'rooot': unknown field (got 'x')",
        ),
    ],
)
def test_errors_name_file_operator_field_and_value(
    isolated_steplift: Path, text: str, expected: str
) -> None:
    path = write(isolated_steplift / "steplift.toml", text)
    with pytest.raises(ConfigError) as caught:
        create_operator()
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_several_operators_and_no_default_is_an_error(isolated_steplift: Path) -> None:
    write(
        isolated_steplift / "steplift.toml",
        '[operators.a]\nflavor = "local"\n[operators.b]\nflavor = "local"\n',
    )
    with pytest.raises(ConfigError, match="several operators"):
        create_operator()


def test_unknown_flavor_lists_installed_and_the_install_hint(isolated_steplift: Path) -> None:
    write(isolated_steplift / "steplift.toml", '[operators.gpu]\nflavor = "sagemakr"\n')
    with pytest.raises(ConfigError) as caught:
        create_operator()
    assert "flavor 'sagemakr' is not installed" in str(caught.value)
    assert "local" in str(caught.value)


def test_missing_cloud_flavor_names_the_extra(
    isolated_steplift: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steplift.registry import get_flavor

    get_flavor.cache_clear()
    for name in [n for n in sys.modules if n.startswith("steplift_azureml")] + ["steplift_azureml"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    try:
        with pytest.raises(FlavorNotFound) as caught:
            get_flavor("azureml")
    finally:
        get_flavor.cache_clear()
    assert 'pip install "steplift[azureml]"' in str(caught.value)
    assert "local" in caught.value.installed


def test_ctrl_c_during_config_validation_stays_an_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An interrupt landing while pydantic builds a config class's validator is swallowed and
    # leaves a validator that refuses valid fields: validation, which may import the config
    # class only now, holds Ctrl-C until it is done.
    import os
    import signal

    from steplift import registry
    from steplift.config import OperatorEntry, validate_operator
    from steplift.flavors.local import FLAVOR
    from steplift.operator import Flavor, StepOperatorConfig

    class Interrupted(Flavor):
        validated = False

        @property
        def config_class(self) -> type[StepOperatorConfig]:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands while the class is imported
            config_class = super().config_class
            Interrupted.validated = True
            return config_class

    monkeypatch.setattr(
        registry,
        "get_flavor",
        lambda name: Interrupted(name="local", config=FLAVOR.config, operator=FLAVOR.operator),
    )
    entry = OperatorEntry("mine", "local", {}, "steplift.toml")
    with pytest.raises(KeyboardInterrupt):
        validate_operator(entry)
    assert Interrupted.validated  # held until validation ended, then delivered
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
