"""rl-zoo3's own hyperparameters for an algorithm on an env: the baselines a user would run."""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import tempfile
from typing import Any, NamedTuple


class ZooConfig(NamedTuple):
    """
    :param hyperparams: keyword arguments of the algorithm (``policy`` included; schedules built)
    :param n_timesteps: the zoo's training budget
    :param n_envs: the zoo's number of parallel envs
    :param normalize: whether the zoo wraps the env in ``VecNormalize``
    """

    hyperparams: dict[str, Any]
    n_timesteps: int
    n_envs: int
    normalize: bool


def zoo_config(algo: str, env_id: str) -> ZooConfig:
    """
    Read and preprocessed by rl-zoo3's own ``ExperimentManager`` from its installed ``hyperparams/ALGO.yml``.

    :param algo: rl-zoo3's algorithm name (``dqn``, ``ppo``...)
    :param env_id: gymnasium id
    :return: the zoo's configuration (a copy: SB3 writes into ``policy_kwargs``)
    """
    config = _read(algo, env_id)
    return config._replace(hyperparams=copy.deepcopy(config.hyperparams))


@functools.cache
def _read(algo: str, env_id: str) -> ZooConfig:
    from rl_zoo3.exp_manager import ExperimentManager

    with tempfile.TemporaryDirectory() as log_folder, contextlib.redirect_stdout(io.StringIO()):
        manager = ExperimentManager(argparse.Namespace(), algo, env_id, log_folder, verbose=0)
        hyperparams, _ = manager.read_hyperparameters()
        hyperparams, *_ = manager._preprocess_hyperparams(hyperparams)
    return ZooConfig(hyperparams, int(manager.n_timesteps), int(manager.n_envs), bool(manager.normalize))
