"""``python -m pyllmattr``: the same as the ``pyllmattr`` command."""

import sys

from .cli import main

sys.exit(main())
