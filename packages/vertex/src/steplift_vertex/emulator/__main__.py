"""``python -m steplift_vertex.emulator --port 8090`` (as ``steplift emulator vertex``)."""

import sys

from steplift_vertex.emulator.cli import main

sys.exit(main())
