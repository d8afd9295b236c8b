"""``python -m steplift_vertex.emulator --port 8090``."""

import sys

from steplift_vertex.emulator import main

sys.exit(main())
