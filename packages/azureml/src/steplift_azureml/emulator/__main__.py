"""``python -m steplift_azureml.emulator``."""

import sys

from steplift_azureml.emulator.cli import main

sys.exit(main())
