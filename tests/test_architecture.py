"""docs/architecture.md is true: every module it names exists, and every module of the package has a row."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sb3_distill"
PAGE = REPO / "docs" / "architecture.md"
#: Paths of the page's table and data flow: `a/b.py`, `a/` (a folder), or the same without backticks in the diagram
_PATH = re.compile(r"(?<![\w./-])((?:[A-Za-z_][\w-]*/)+(?:[A-Za-z_]\w*\.py)?|[A-Za-z_]\w*\.py)(?![\w/])")
#: Where a named path is looked for: the package first, then the repository's root (`scripts/...`, `tests/`)
ROOTS = (PACKAGE, REPO)


def _table_rows() -> set[str]:
    """The names in the first column of the module table, relative to sb3_distill/ where they are in it."""
    table = PAGE.read_text().split("## Modules", 1)[1]
    cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name.removeprefix("sb3_distill/") for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def _named_paths() -> set[str]:
    """The table's names, and the paths the data flow mentions."""
    text = PAGE.read_text()
    flow = text[text.index("## Data flow") : text.index("## Modules")]
    return _table_rows() | {match for match in _PATH.findall(flow) if "/" in match or match.endswith(".py")}


def _exists(name: str) -> bool:
    return any((root / name).exists() for root in ROOTS)


def test_every_module_the_page_names_exists() -> None:
    missing = sorted(name for name in _named_paths() if not _exists(name))
    assert not missing, (
        f"docs/architecture.md names {missing}, which do not exist (paths are relative to sb3_distill/, or to the "
        "repository's root): rename or remove their rows and mentions."
    )


def test_every_module_of_the_package_has_a_row() -> None:
    rows = _table_rows()
    modules = sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if "bundled" not in path.parts)
    unnamed = [module for module in modules if module not in rows]
    assert not unnamed, (
        "docs/architecture.md's module table has no row for "
        + ", ".join(unnamed)
        + ": add a row such as | `"
        + unnamed[0]
        + "` | what is in it | (or name it in the row of its neighbour: | `a.py`, `b.py` | ... |)."
    )
