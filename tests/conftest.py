"""
Shared fixtures, and the rule that nothing is skipped.

``tests/data/zoo`` holds real files of the public rl-trained-agents collection (MIT, see its LICENSE), so a fresh clone
runs every test. A test that skips or xfails fails instead, unless its reason names a missing accelerator (CUDA, MPS):
a skipped test is a guarantee nobody checked.
"""

import os
import re
from pathlib import Path

import pytest
import torch as th

# Two cores on CI: one torch thread per test process avoids oversubscription (and is faster for small nets).
th.set_num_threads(1)

#: Skip / xfail reasons that are allowed: hardware this machine does not have.
ACCELERATOR_REASON = re.compile(r"\b(cuda|gpu|mps|accelerator)\b", re.IGNORECASE)


@pytest.fixture(scope="session", autouse=True)
def sb3_log_folder(tmp_path_factory: pytest.TempPathFactory):
    """
    SB3 makes an empty folder ``<tempdir>/SB3-<date and time>`` for every ``learn()`` without a log folder unless
    ``$SB3_LOGDIR`` names one: the suite's thousands of runs share one inside pytest's own temporary folder.
    """
    folder = str(tmp_path_factory.mktemp("sb3-logs"))
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = folder
    yield folder
    if previous is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = previous


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "zoo"


@pytest.fixture(scope="session")
def zoo_dqn_cartpole(zoo_dir: Path):
    from sb3_distill import load_teacher

    return load_teacher(zoo_dir / "dqn" / "CartPole-v1_1")


def skip_reason(report: pytest.TestReport) -> str:
    """
    :param report: a skipped (or xfailed) test's report
    :return: the reason pytest recorded for it
    """
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Turn a skip or an xfail into a failure unless its reason names a missing accelerator."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped:
        return
    reason = skip_reason(report)
    if ACCELERATOR_REASON.search(reason):
        return
    kind = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} {kind} ({reason}). Tests of sb3-distill never skip: install what is missing (`make test` "
        "installs everything, PostgreSQL included) or fix the test. Only a missing accelerator (CUDA, MPS) may skip."
    )
    if hasattr(report, "wasxfail"):
        del report.wasxfail
