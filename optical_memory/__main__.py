"""``python -m optical_memory``: the same command line as ``optical-memory``."""

import sys

from optical_memory.cli import main

sys.exit(main())
