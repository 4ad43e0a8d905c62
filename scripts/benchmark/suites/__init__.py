"""One file per benchmark suite; ``--suite NAME`` runs ``suites/NAME.py``'s ``SUITE``."""
