"""``python -m steplift_azureml.emulator``."""

import sys

from steplift_azureml.emulator import main

sys.exit(main())
