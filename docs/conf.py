"""Sphinx configuration of the sb3-distill documentation (``make docs`` builds it offline with warnings as errors)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

with open(os.path.join(os.path.dirname(__file__), "..", "sb3_distill", "version.txt")) as file_handler:
    release = file_handler.read().strip()

project = "sb3-distill"
author = "sb3-distill contributors"
copyright = "2026, sb3-distill contributors"  # noqa: A001
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Offline: no intersphinx (it would download inventories); SB3 names are written as plain text.

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-distill {release}"
html_static_path: list[str] = []
