"""`python -m rim.cli ...` is the `rim` command (as `accelerate launch -m rim.cli` runs it)."""

import sys

from rim.cli import main

sys.exit(main())
