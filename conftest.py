"""Every test runs in its own working directory with its own steplift state and no config
from the developer's environment."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests run on a busy 2-core machine next to emulators and subprocesses: timing is
# not what they test, so no per-example deadline and no slow-generation health check.
settings.register_profile("steplift", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("steplift")

# A suite started in the background (nohup, or `&` in a shell without job control) inherits
# Ctrl-C ignored, and so would every process it starts; the interrupt tests need it delivered.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_steplift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("STEPLIFT_HOME", str(tmp_path / "home"))
    for name in ("STEPLIFT_CONFIG", "STEPLIFT_OPERATOR", "STEPLIFT_RUN", "STEPLIFT_PIPELINE"):
        monkeypatch.delenv(name, raising=False)
    yield workdir
