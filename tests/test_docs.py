"""Every Python example of the README and the docs runs: the blocks of one page run in order, in one namespace."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
PAGES = [page for page in PAGES if "_build" not in page.parts]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: Shorter budgets for the examples that train longest (page -> (text of the page, what runs instead)). This test
#: checks that every example runs: each call, argument and file of the page, in order. What the example learns is
#: checked by the learning tests; at the page's budgets the examples took 2 minutes of the suite. Every budget stays
#: past ``learning_starts`` (and a PPO rollout), so that the gradient steps run too. Each text must still be in its
#: page: a stale entry fails instead of silently running the long version.
SHORTER: dict[str, list[tuple[str, str]]] = {
    "README.md": [
        ("model.learn(3_000)", "model.learn(500)"),
        ("student.learn(1_000)", "student.learn(200)"),
        ("student.learn(4_096)", "student.learn(512)"),
    ],
    "docs/guide/getting_started.md": [("student.learn(5_000)", "student.learn(500)")],
    "docs/guide/robustness.md": [
        ("student.learn(5_000)", "student.learn(500)"),
        ("blind_student.learn(3_000)", "blind_student.learn(300)"),
        ("robust_student.learn(total_timesteps=15_000)", "robust_student.learn(total_timesteps=300)"),
        ("adapting.learn(2_000)", "adapting.learn(300)"),
        ("sim_student.learn(10_000)", "sim_student.learn(300)"),
        ("on_robot.learn(5_000)", "on_robot.learn(300)"),
        ("all_pushes.learn(20_000)", "all_pushes.learn(300)"),
        # the experts' training (scripts/train_teachers.py --dynamics, minutes each): the bundled teacher stands in
        ('"teachers/dynamics/force_mag=0.25/dqn/CartPole-v1_1"', '"dqn/CartPole-v1"'),
        ('"teachers/dynamics/force_mag=0.5/dqn/CartPole-v1_1"', '"dqn/CartPole-v1"'),
    ],
    "docs/guide/deployment.md": [("quantization_aware_distill(student, 1_000", "quantization_aware_distill(student, 100")],
    "docs/guide/policy_distill.md": [
        ("model.learn(1_000)", "model.learn(200)"),
        ("ppo.learn(4_096)", "ppo.learn(2_048)"),  # one rollout of PPO's n_steps=2048
        ("student.learn(1_500)", "student.learn(300)"),
        ("n_steps=2_000", "n_steps=500"),
        ("learn_offline(gradient_steps=1_500)", "learn_offline(gradient_steps=200)"),
        ("learning_teacher.learn(8_192", "learning_teacher.learn(2_048"),  # the callback still distils twice
    ],
    "docs/reliability.md": [
        ("total_timesteps = 1_200", "total_timesteps = 600"),
        ("save_freq=400", "save_freq=200"),
        ("model.learn(800,", "model.learn(400,"),
    ],
}


def python_blocks(page: Path) -> list[str]:
    """
    :param page: a Markdown file
    :return: the code of its ```python blocks, in order
    """
    return _BLOCK.findall(page.read_text())


def shortened_blocks(page: Path) -> list[str]:
    """
    :param page: a Markdown file
    :return: its ```python blocks, with the budgets of :data:`SHORTER` in place of the page's
    """
    blocks = python_blocks(page)
    for text, shorter in SHORTER.get(str(page.relative_to(REPO)), []):
        found = sum(block.count(text) for block in blocks)
        where = page.relative_to(REPO)
        assert found == 1, f"SHORTER: {text!r} is in {where} {found} times, not once: update it in tests/test_docs.py"
        blocks = [block.replace(text, shorter) for block in blocks]
    return blocks


def test_pages_have_examples() -> None:
    # The extraction must find the examples, else every page would "pass" with nothing run.
    assert python_blocks(REPO / "README.md"), "the README's examples are not found"
    assert sum(len(python_blocks(page)) for page in PAGES) >= 10
    assert set(SHORTER) <= {str(page.relative_to(REPO)) for page in PAGES}, "SHORTER names a page that is not checked"


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
    for index, code in enumerate(shortened_blocks(page)):
        try:
            exec(compile(code, f"{page.name}[{index}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{page.relative_to(REPO)}: example {index} fails:\n{code}") from error
    assert os.getcwd() == str(tmp_path)
