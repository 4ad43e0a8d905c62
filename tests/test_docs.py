"""Every Python example of the README and the docs runs: the blocks of one page run in order, in one namespace."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
PAGES = [page for page in PAGES if "_build" not in page.parts]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    """
    :param page: a Markdown file
    :return: the code of its ```python blocks, in order
    """
    return _BLOCK.findall(page.read_text())


def test_pages_have_examples() -> None:
    # The extraction must find the examples, else every page would "pass" with nothing run.
    assert python_blocks(REPO / "README.md"), "the README's examples are not found"
    assert sum(len(python_blocks(page)) for page in PAGES) >= 10


@pytest.mark.parametrize("page", [page for page in PAGES if python_blocks(page)], ids=lambda page: str(page.relative_to(REPO)))
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Files the examples write land in a temporary folder; zoo ids resolve to the test copies of real zoo agents.
    monkeypatch.chdir(tmp_path)
    # Examples name the repository's real zoo files by their path in a clone (tests/data/zoo).
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "zoo").symlink_to(REPO / "tests" / "data" / "zoo")
    monkeypatch.setenv("SB3_DISTILL_ZOO", str(REPO / "tests" / "data" / "zoo"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, code in enumerate(python_blocks(page)):
        try:
            exec(compile(code, f"{page.name}[{index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{page.relative_to(REPO)}: example {index} fails:\n{code}") from error
    assert os.getcwd() == str(tmp_path)
