"""The code package: what travels, deterministic bytes, the size limit, bad settings."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from steplift.errors import ConfigError, IntegrityError
from steplift.packaging.archive import pack
from steplift.packaging.discovery import discover
from steplift.packaging.requirements import resolve_requirements
from steplift.packaging.shipping import check_code_setting, plan_code
from steplift.packaging.unpack import unpack_code
from steplift.store import LocalArtifactStore

SECRETS = [
    ".env",
    ".env.production",
    "id_rsa",
    "deploy/id_ed25519",
    "certs/server.pem",
    "certs/server.key",
    "home/.aws/credentials",
    ".aws/config",
    ".azure/accessTokens.json",
    ".config/gcloud/application_default_credentials.json",
    "application_default_credentials.json",
]
NEVER = [
    *SECRETS,
    ".git/config",
    "venv/lib/python3.11/site-packages/x.py",
    "venv/pyvenv.cfg",
    "pkg/__pycache__/mod.cpython-311.pyc",
    "stale.pyc",
    ".steplift/local/jobs/x.json",
    ".nox/tests/bin/python",
    ".tox/py/x",
]
KEPT = ["train.py", "pkg/__init__.py", "pkg/mod.py", "data/table.csv", "README.md"]


def plant(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")


def members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return archive.getnames()


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture(params=["folder", "git"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    plant(root, [name for name in KEPT + NEVER if name != ".git/config"])
    if request.param == "folder":
        plant(root, [".git/config"])
    else:
        git(root, "init", "-q")
        # Even tracked, force-added secrets stay out: the rule is not up to the ignore files.
        git(root, "add", "-f", "--", *[name for name in KEPT + SECRETS if ".git/" not in name])
    return root


def test_secrets_git_venvs_and_caches_never_travel(project: Path) -> None:
    found = discover(project)
    assert sorted(found.files) == sorted(KEPT)
    assert sorted(members(pack(found).data)) == sorted(KEPT)


def test_ignore_files_drop_more_but_cannot_let_a_secret_in(tmp_path: Path) -> None:
    root = tmp_path / "p"
    plant(root, [*KEPT, "big/weights.bin", "notes.log", ".env"])
    (root / ".gitignore").write_text("*.log\n")
    (root / ".stepliftignore").write_text("big/\n!.env\n")
    assert sorted(discover(root).files) == sorted(KEPT + [".gitignore", ".stepliftignore"])


def test_in_git_the_untracked_but_not_ignored_files_travel(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    plant(root, ["tracked.py", "new.py", "out/build.txt"])
    (root / ".gitignore").write_text("out/\n")
    git(root, "init", "-q")
    git(root, "add", "tracked.py", ".gitignore")
    assert discover(root).files == (".gitignore", "new.py", "tracked.py")


def test_same_tree_same_digest_and_a_one_line_change_a_new_one(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        plant(root, KEPT)
    # Other times and modes of creation, same content: same bytes.
    (second / "train.py").touch()
    time.sleep(0.01)
    (second / "pkg" / "mod.py").write_text("content of pkg/mod.py\n")
    one, two = pack(discover(first)), pack(discover(second))
    assert one.sha256 == two.sha256 and one.data == two.data
    with tarfile.open(fileobj=io.BytesIO(one.data), mode="r:gz") as archive:
        for member in archive.getmembers():
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
                0,
                0,
                0,
                "",
                "",
            )
    (second / "train.py").write_text("print('changed')\n")
    assert pack(discover(second)).sha256 != one.sha256


def test_an_oversized_package_is_refused_naming_its_largest_files(tmp_path: Path) -> None:
    root = tmp_path / "p"
    plant(root, KEPT)
    (root / "model.bin").write_bytes(b"x" * 600_000)
    (root / "data" / "huge.csv").write_bytes(b"y" * 500_000)
    with pytest.raises(ConfigError) as caught:
        plan_code("auto", source_root=str(root), limit_mb=1)
    text = str(caught.value)
    assert "field 'code'" in text and "over the 1.0 MB limit" in text
    assert text.index("model.bin (600.0 KB)") < text.index("data/huge.csv (500.0 KB)")
    assert plan_code("auto", source_root=str(root), limit_mb=2) is not None


def test_code_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names no folder"):
        check_code_setting(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="field 'code'"):
        check_code_setting("")
    assert plan_code(False, source_root=str(tmp_path)) is None
    assert plan_code("auto", source_root=None) is None  # its code comes with the image


def test_a_code_folder_ships_only_that_folder(tmp_path: Path) -> None:
    root = tmp_path / "p"
    plant(root, ["src/app/__init__.py", "src/app/step.py", "docs/index.md"])
    plan = plan_code(str(root / "src"), source_root=str(root / "src"), cwd=tmp_path)
    assert plan is not None
    assert plan.project.files == ("app/__init__.py", "app/step.py")
    assert (plan.import_path, plan.workdir) == (".", ".")


def test_the_job_imports_from_the_steps_root_and_runs_from_the_launchers_place(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    plant(root, ["src/app/step.py", "scripts/run.sh"])
    git(root, "init", "-q")
    plan = plan_code("auto", source_root=str(root / "src"), cwd=root / "scripts")
    assert plan is not None and plan.project.root == root.resolve()
    assert (plan.import_path, plan.workdir) == ("src", "scripts")
    elsewhere = plan_code("auto", source_root=str(root / "src"), cwd=tmp_path)
    assert elsewhere is not None and elsewhere.workdir == "src"


def test_unpacking_verifies_the_digest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLIFT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "p"
    plant(root, KEPT)
    package = pack(discover(root))
    store = LocalArtifactStore()
    uri = str(tmp_path / "store" / f"{package.sha256}.tar.gz")
    store.put(uri, package.data)
    folder = unpack_code(store, uri, package.sha256)
    assert folder == tmp_path / "cache" / "code" / package.sha256
    assert (folder / "pkg" / "mod.py").read_text() == "content of pkg/mod.py\n"
    store.put(uri, b"tampered")
    assert unpack_code(store, uri, package.sha256) == folder  # cached: not fetched again
    with pytest.raises(IntegrityError):
        unpack_code(store, uri, "0" * 64)
    assert not (tmp_path / "cache" / "code" / ("0" * 64)).exists()


def test_requirements_from_a_list_a_file_or_the_project(tmp_path: Path) -> None:
    listed = resolve_requirements(["numpy>=1.26", "  ", "# note"], project_root=None)
    assert listed is not None and listed.text == "numpy>=1.26\n"
    (tmp_path / "requirements.txt").write_text("numpy>=1.26\n")
    from_file = resolve_requirements(str(tmp_path / "requirements.txt"), project_root=None)
    assert from_file == listed
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["numpy>=1.26"]\n')
    assert resolve_requirements("auto", project_root=tmp_path) == listed
    assert resolve_requirements(None, project_root=None) is None
    with pytest.raises(ConfigError, match="field 'requirements': names no file"):
        resolve_requirements(str(tmp_path / "missing.txt"), project_root=None)
    with pytest.raises(ConfigError, match="no pyproject.toml"):
        resolve_requirements("auto", project_root=tmp_path / "nowhere")


def test_main_functions_are_pickled_unless_main_is_an_importable_module(tmp_path: Path) -> None:
    package = tmp_path / "pkgm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "run.py").write_text(
        "from steplift.packaging.functions import defined_in_main\n"
        "def step(): pass\n"
        "session = {}\n"  # a notebook's namespace: __main__ by name, not the started module
        "exec('def cell(): pass', session)\n"
        "session['cell'].__module__ = '__main__'\n"
        "print(defined_in_main(step), defined_in_main(session['cell']))\n"
    )
    as_module = subprocess.run(
        [sys.executable, "-m", "pkgm.run"], cwd=tmp_path, capture_output=True, text=True
    )
    as_script = subprocess.run(
        [sys.executable, str(package / "run.py")], capture_output=True, text=True
    )
    assert as_module.stdout.split() == ["False", "True"], as_module.stderr
    assert as_script.stdout.split() == ["True", "True"], as_script.stderr
