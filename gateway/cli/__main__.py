"""``python -m gateway.cli``: the same as the ``pgw`` command."""

import sys

from gateway.cli import main

sys.exit(main())
