"""Core never imports a cloud SDK, and `import steplift` stays cheap."""

from __future__ import annotations

from steplift.testing.processes import modules_loaded_by


def test_import_steplift_imports_no_cloud_sdk_and_no_pydantic() -> None:
    assert modules_loaded_by("import steplift") == []
    # The public names load on first use: a bare import pays for nothing else.
    assert modules_loaded_by("import steplift", roots=("pydantic", "rich")) == []


def test_using_the_whole_core_imports_no_cloud_sdk() -> None:
    code = (
        "import steplift, steplift.cli, steplift.launcher, steplift.entrypoint, steplift.config\n"
        "import steplift.flavors.local, steplift.testing.conformance\n"
        "steplift.step; steplift.create_operator()\n"
        "from steplift.registry import get_flavor; get_flavor('local')"
    )
    assert modules_loaded_by(code) == []


def test_help_imports_neither_rich_nor_pydantic() -> None:
    code = (
        "import contextlib, io, steplift.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    steplift.cli.main(['--help'])"
    )
    assert modules_loaded_by(code, roots=("rich", "pydantic")) == []
