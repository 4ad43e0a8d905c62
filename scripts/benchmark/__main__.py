"""
``python -m scripts.benchmark --suite NAME --out DIR ...`` (from the repository's root): the benchmark's entry point
(``--help`` lists the options, the package's ``__init__`` the layout).
"""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
