"""``python -m stack``: see :mod:`stack.cli`."""

from __future__ import annotations

import sys

from stack.cli import main

if __name__ == "__main__":
    sys.exit(main())
