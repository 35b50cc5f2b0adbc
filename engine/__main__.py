"""``python -m engine`` is the ``backprop`` command."""

import sys

from engine.cli import main

sys.exit(main())
