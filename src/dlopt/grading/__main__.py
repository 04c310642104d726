"""``python -m dlopt.grading`` is ``dlopt-grade``."""

import sys

from .cli import main

sys.exit(main())
