"""
``python scripts/benchmark.py --suite NAME --out DIR ...``: the entry point of the benchmark package beside this file
(``scripts/benchmark/``; ``--help`` lists the options, its ``__init__`` the layout).
"""

import sys
from pathlib import Path

# Python finds the package scripts/benchmark/ before this file of the same name, once scripts/ is on the path (the
# spawned workers get it too).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
