"""`python -m lstsd_edu ...` is the `lstsd-edu` command."""

import sys

from .cli import main

sys.exit(main())
