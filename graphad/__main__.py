"""``python -m graphad``: the graphad command."""

import sys

from .cli import main

sys.exit(main())
