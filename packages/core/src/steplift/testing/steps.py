"""Step functions the conformance suite runs inside jobs (importable wherever steplift is)."""

from __future__ import annotations

import time


def add_and_log(a: int, b: int) -> int:
    """Print a line and return the sum."""
    print(f"adding {a} and {b}", flush=True)
    return a + b


def fail_with(message: str) -> None:
    """Raise a RuntimeError carrying ``message``."""
    print("about to fail", flush=True)
    raise RuntimeError(message)


def sleep_for(seconds: float) -> str:
    """Print, sleep, return. Tests stop it long before it ends."""
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke up"


def resume_from_checkpoint() -> list[str]:
    """Record this attempt in the checkpoint folder; the first attempt then waits to be broken.

    Returns every attempt the checkpoint has seen, so a resumed attempt returns ["1", "2"].
    """
    import os

    from steplift.sdk import checkpoint_dir

    progress = checkpoint_dir() / "progress.txt"
    seen = progress.read_text().split() if progress.exists() else []
    attempt = os.environ["STEPLIFT_JOB_ATTEMPT"]
    seen.append(attempt)
    progress.write_text(" ".join(seen))
    print(f"checkpointed attempt {attempt}", flush=True)
    if attempt == "1":
        time.sleep(120)  # the test breaks the machine under this attempt
    return seen


def secret_digest(name: str) -> str:
    """The SHA-256 of environment variable ``name``: proves a secret arrived, without its value."""
    import hashlib
    import os

    print(f"{name} is set: {name in os.environ}", flush=True)
    return hashlib.sha256(os.environ[name].encode()).hexdigest()
