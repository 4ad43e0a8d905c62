"""
Our algorithms in rl-zoo3's registries: ``ALGOS``, ``HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER``.

One :class:`ZooAlgorithm` per algorithm in :data:`ALGORITHMS`: adding one to rl-zoo3 is one line there and a
sampler/converter pair (in :mod:`sb3_distill.zoo.samplers`).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_distill.zoo.samplers import (
    convert_distill_dqn_params,
    convert_distill_ppo_params,
    convert_policy_distill_params,
    sample_distill_dqn_params,
    sample_distill_ppo_params,
    sample_policy_distill_params,
)

#: Our rl-zoo3 hyperparameter files (the repository's top-level ``hyperparams/``, shipped inside the package).
HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"


@dataclass(frozen=True)
class ZooAlgorithm:
    """
    An algorithm of this package as rl-zoo3 sees it.

    :param name: its ``--algo`` name, also the name of its folder in the package (``sb3_distill/{name}/``)
    :param class_name: the algorithm class, imported from ``sb3_distill.{name}`` on first use (SB3's modules are heavy)
    :param sampler: its Optuna sampler (rl-zoo3's signature: trial, n_actions, n_envs, additional_args)
    :param converter: rebuilds the sampler's keyword arguments from ``trial.params`` (``--trial-id N``)
    """

    name: str
    class_name: str
    sampler: Callable[..., dict[str, Any]]
    converter: Callable[[dict[str, Any]], dict[str, Any]]

    @property
    def module(self) -> str:
        """:return: the module that defines the class"""
        return f"sb3_distill.{self.name}"

    def load(self) -> type[BaseAlgorithm]:
        """
        :return: the algorithm class (an error inside its module is raised, not hidden)
        """
        return getattr(importlib.import_module(self.module), self.class_name)


#: Every algorithm this package adds to rl-zoo3, by its ``--algo`` name.
ALGORITHMS: tuple[ZooAlgorithm, ...] = (
    ZooAlgorithm("distill_dqn", "DistillDQN", sample_distill_dqn_params, convert_distill_dqn_params),
    ZooAlgorithm("policy_distill", "PolicyDistill", sample_policy_distill_params, convert_policy_distill_params),
    ZooAlgorithm("distill_ppo", "DistillPPO", sample_distill_ppo_params, convert_distill_ppo_params),
)
#: Their names.
ALGO_NAMES: tuple[str, ...] = tuple(algorithm.name for algorithm in ALGORITHMS)
#: Samplers and converters by name, as rl-zoo3's ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` hold them.
SAMPLERS: dict[str, Callable[..., dict[str, Any]]] = {algorithm.name: algorithm.sampler for algorithm in ALGORITHMS}
CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    algorithm.name: algorithm.converter for algorithm in ALGORITHMS
}


def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """
    :return: our algorithm classes by rl-zoo3 name (imported now)
    """
    return {algorithm.name: algorithm.load() for algorithm in ALGORITHMS}


def register() -> list[str]:
    """
    Add our algorithms, samplers and converters to rl-zoo3's registries (in place; calling it again changes nothing).

    rl-zoo3's ``train``/``enjoy`` take their ``--algo`` choices from ``ALGOS`` when they build their parser, so
    call this first.

    :return: the names registered
    """
    from rl_zoo3 import hyperparams_opt, utils

    classes = algorithms()
    for name, cls in classes.items():
        utils.ALGOS[name] = cls
        hyperparams_opt.HYPERPARAMS_SAMPLER[name] = SAMPLERS[name]
        hyperparams_opt.HYPERPARAMS_CONVERTER[name] = CONVERTERS[name]  # type: ignore[assignment]
    return list(classes)


def packaged_hyperparams(algo: str) -> Path | None:
    """
    :param algo: rl-zoo3 algorithm name
    :return: our hyperparameter file for it, if we ship one
    """
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    return path if path.is_file() else None
