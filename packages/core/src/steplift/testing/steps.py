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


def where_am_i() -> dict[str, int | str]:
    """This process's place in a multi-node step, as ``steplift.distributed()`` sees it.

    Every rank prints it (so each node's log shows its line); rank 0's copy is the result.
    """
    from steplift.cluster import distributed

    place = distributed()
    print(f"rank {place.rank} of {place.world_size} on node {place.node_rank}", flush=True)
    return {
        "world_size": place.world_size,
        "rank": place.rank,
        "node_rank": place.node_rank,
        "nodes": place.nodes,
        "local_rank": place.local_rank,
        "master": f"{place.master_addr}:{place.master_port}",
    }


def all_reduce_ranks(timeout: float = 60.0) -> dict[str, float | int]:
    """A real rendezvous and collective: each process adds ``rank + 1`` with PyTorch's gloo.

    Returns what rank 0 sees, so two processes return ``{"sum": 3.0, "world_size": 2}``.
    torch is imported by name: it is a test extra, not a dependency of steplift.
    """
    import datetime
    import importlib

    from steplift.cluster import distributed

    torch = importlib.import_module("torch")
    dist = importlib.import_module("torch.distributed")
    place = distributed()
    dist.init_process_group(
        "gloo",
        init_method="env://",
        world_size=place.world_size,
        rank=place.rank,
        timeout=datetime.timedelta(seconds=timeout),
    )
    try:
        value = torch.tensor([float(place.rank + 1)])
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        print(f"rank {place.rank}: all_reduce gave {value.item():g}", flush=True)
        return {"sum": float(value.item()), "world_size": int(dist.get_world_size())}
    finally:
        dist.destroy_process_group()


def fail_on_rank(rank: int, message: str, seconds: float = 60.0) -> str:
    """Rank ``rank`` raises at once; every other rank sleeps (until its node is stopped)."""
    from steplift.cluster import distributed

    place = distributed()
    if place.rank == rank:
        raise RuntimeError(f"{message} (rank {place.rank})")
    print(f"rank {place.rank} waiting", flush=True)
    time.sleep(seconds)
    return "not stopped"


def fail_late_on_rank(rank: int, seconds: float) -> str:
    """Every rank but ``rank`` returns at once; rank ``rank`` fails after ``seconds``."""
    from steplift.cluster import distributed

    place = distributed()
    if place.rank != rank:
        return f"rank {place.rank} done"
    time.sleep(seconds)
    raise RuntimeError(f"rank {place.rank} failed late")
