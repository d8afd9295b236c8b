"""`python -m steplift_sagemaker.emulator`: serve the SageMaker emulator until Ctrl-C."""

import sys

from .cli import main

sys.exit(main())
