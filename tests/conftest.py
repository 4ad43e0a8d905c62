"""Shared fixtures. ``../shared/zoo`` holds real rl-trained-agents files; tests that need it skip without it."""

from pathlib import Path

import pytest
import torch as th

# Two cores on CI: one torch thread per test process avoids oversubscription (and is faster for small nets).
th.set_num_threads(1)

ZOO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "zoo"


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    if not ZOO_DIR.is_dir():
        pytest.skip(f"the shared zoo folder {ZOO_DIR} is not present")
    return ZOO_DIR


@pytest.fixture(scope="session")
def zoo_dqn_cartpole(zoo_dir: Path):
    from sb3_distill import load_teacher

    return load_teacher(zoo_dir / "dqn" / "CartPole-v1_1")
