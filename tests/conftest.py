"""Shared fixtures. ``tests/data/zoo`` holds real files of the public rl-trained-agents collection (MIT, see its LICENSE)."""

from pathlib import Path

import pytest
import torch as th

# Two cores on CI: one torch thread per test process avoids oversubscription (and is faster for small nets).
th.set_num_threads(1)


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "zoo"


@pytest.fixture(scope="session")
def zoo_dqn_cartpole(zoo_dir: Path):
    from sb3_distill import load_teacher

    return load_teacher(zoo_dir / "dqn" / "CartPole-v1_1")
