"""The example training step on a cloud emulator, through a real config file and the real SDK.

    python examples/on_emulator.py {sagemaker,vertex,azureml}

The emulator (installed with the provider's `emulator` extra; Azure ML's also needs Azurite,
see the docs) serves the cloud's API on 127.0.0.1 and runs the job as a local process, in a
container of its image: here the image is this Python environment (`emulator.images`);
steplift talks to it with the provider's own SDK, exactly as it would to the cloud. The
emulator is found through its `steplift.emulators` entry point and says itself which
operator config points at it (`operator_table`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# What this example asks of each cloud beyond what its emulator's defaults say.
EXAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "sagemaker": {"gpu": "A10G:1"},
    "vertex": {"gpu": "T4:1"},
}


def main(cloud: str) -> None:
    from steplift.emulation import operator_table
    from steplift.registry import installed_emulators

    emulators = installed_emulators()
    if cloud not in emulators:
        sys.exit(f"usage: python examples/on_emulator.py {{{','.join(sorted(emulators))}}}")
    from train import train

    emulator_class = emulators[cloud].load()
    with emulator_class(mode="execute") as emulator, tempfile.TemporaryDirectory() as d:
        os.environ.update(emulator.client_env())
        # The job runs on the image the operator names: this environment stands in for a
        # framework image with steplift (and numpy) installed.
        emulator.images.register(emulator.operator_config()["image"], sys.prefix)
        table = operator_table(emulator, **EXAMPLE_FIELDS.get(cloud, {}))
        config = Path(d) / "steplift.toml"
        config.write_text(f'default_operator = "{cloud}"\n[operators.{cloud}]\n{table}')
        os.environ["STEPLIFT_CONFIG"] = str(config)
        print(f"--- {config} ---\n{config.read_text()}")
        metrics = train(20)
        print(f"metrics from the {cloud} emulator:", metrics)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
