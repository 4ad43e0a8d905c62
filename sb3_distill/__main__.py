"""``python -m sb3_distill``: the same as the ``sb3-distill`` command."""

import sys

from sb3_distill.cli import main

if __name__ == "__main__":
    sys.exit(main())
