"""A fourth flavor is added without editing core: a distribution that declares its flavor,
emulator and cluster reader through entry points is seen by ``steplift operators``,
``steplift emulator`` and ``steplift.cluster``, and a flavor that is not installed gets the
install hint its distribution declares.

The toy distribution is written into a temporary folder as an installer would lay it out
(its package beside a ``*.dist-info`` with ``entry_points.txt``) and that folder is put on
the ``PYTHONPATH`` of the steplift processes: the same discovery as for an installed wheel,
without a pip run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY = {
    "toyflavor/__init__.py": '"""A toy steplift provider."""\n',
    "toyflavor/flavor.py": (
        '"""The toy flavor: the local flavor under another name."""\n'
        "from importlib.metadata import entry_points\n\n"
        'FLAVOR = entry_points(group="steplift.flavors")["local"].load()\n'
    ),
    "toyflavor/emulator.py": (
        '"""The toy emulator; `steplift emulator toy` says what it was given and exits 3."""\n'
        "class ToyEmulator:\n"
        "    @staticmethod\n"
        "    def main(argv):\n"
        '        print("toy emulator serving with", argv, flush=True)\n'
        "        return 3\n"
    ),
    "toyflavor/cluster.py": (
        '"""TOY_NODES=N/RANK: how the toy cloud describes a multi-node job."""\n'
        "from steplift.cluster import Cluster, ClusterReader\n\n"
        "def read(env):\n"
        '    if "TOY_NODES" not in env:\n'
        "        return None\n"
        '    nodes, _, rank = env["TOY_NODES"].partition("/")\n'
        '    return Cluster(int(nodes), int(rank), "toy-0", 1234, source="toy")\n\n'
        'READER = ClusterReader("toy", 5, frozenset({"TOY_NODES"}), read)\n'
    ),
    "steplift_toy-0.1.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: steplift-toy\nVersion: 0.1.0\n"
    ),
    "steplift_toy-0.1.0.dist-info/entry_points.txt": (
        "[steplift.flavors]\ntoy = toyflavor.flavor:FLAVOR\n\n"
        "[steplift.emulators]\ntoy = toyflavor.emulator:ToyEmulator\n\n"
        "[steplift.cluster_readers]\ntoy = toyflavor.cluster:READER\n\n"
        # A flavor this distribution's extra would bring, not installed here.
        "[steplift.flavor_extras]\ntoycloud = toycloud [toycloud]\n"
    ),
}


@pytest.fixture
def toy_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for name, text in TOY.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    return site


def steplift(site: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m steplift.cli ARGUMENTS`` with the toy distribution importable."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "steplift.cli", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200"},
        timeout=60,
    )


def test_steplift_operators_lists_the_toy_flavor(toy_site: Path) -> None:
    result = steplift(toy_site, "operators")
    assert result.returncode == 0, result.stderr
    flavors = result.stdout.split("Operators")[0]
    assert "toy" in flavors and "steplift-toy" in flavors
    assert "local" in flavors  # beside the others, not instead of them


def test_steplift_emulator_offers_and_runs_the_toy_emulator(toy_site: Path) -> None:
    listed = steplift(toy_site, "emulator", "--help")
    assert listed.returncode == 0, listed.stderr
    usage = listed.stdout.split("\n\n")[0]
    assert "toy" in usage and "toycloud" in usage
    served = steplift(toy_site, "emulator", "toy", "--port", "0")
    assert "toy emulator serving with ['--port', '0']" in served.stdout
    assert served.returncode == 3, served.stderr  # its main's exit code is the command's
    # Without the toy distribution, core knows nothing of it.
    refused = steplift(toy_site.parent / "empty", "emulator", "toy")
    assert refused.returncode == 2 and "invalid choice: 'toy'" in refused.stderr


def test_a_flavor_that_is_not_installed_gets_its_distributions_install_hint(
    toy_site: Path,
) -> None:
    result = steplift(toy_site, "emulator", "toycloud")
    assert result.returncode == 2
    assert (
        'the toycloud flavor is not installed; add it with: pip install "steplift-toy[toycloud]"'
        in result.stderr
    )


def test_the_toy_cloud_describes_its_cluster_through_its_own_reader(toy_site: Path) -> None:
    probe = (
        "from steplift.cluster import CLUSTER_VARIABLES, read_cluster\n"
        "cluster = read_cluster({'TOY_NODES': '4/2'})\n"
        "print(cluster.source, cluster.nodes, cluster.node_rank, 'TOY_NODES' in CLUSTER_VARIABLES)"
    )
    path = os.pathsep.join(filter(None, [str(toy_site), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["toy", "4", "2", "True"]
