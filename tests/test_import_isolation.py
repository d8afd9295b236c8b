"""Core never imports a cloud SDK, and `import steplift` stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

CLOUD_ROOTS = ("boto3", "botocore", "google", "azure", "moto")


def modules_after(code: str) -> list[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def cloud_modules(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in CLOUD_ROOTS]


def test_import_steplift_imports_no_cloud_sdk_and_no_pydantic() -> None:
    modules = modules_after("import steplift")
    assert cloud_modules(modules) == []
    # The public names load on first use: a bare import pays for nothing else.
    assert "pydantic" not in modules and "rich" not in modules


def test_using_the_whole_core_imports_no_cloud_sdk() -> None:
    code = (
        "import steplift, steplift.cli, steplift.launcher, steplift.entrypoint, steplift.config\n"
        "import steplift.flavors.local, steplift.testing.conformance\n"
        "steplift.step; steplift.create_operator()\n"
        "from steplift.registry import get_flavor; get_flavor('local')"
    )
    assert cloud_modules(modules_after(code)) == []


def test_help_imports_neither_rich_nor_pydantic() -> None:
    modules = modules_after(
        "import contextlib, io, steplift.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    steplift.cli.main(['--help'])"
    )
    assert "rich" not in modules and "pydantic" not in modules
