"""`python -m gateway.cli`: the `fraudgate` command."""

import sys

from gateway.cli import main

sys.exit(main())
