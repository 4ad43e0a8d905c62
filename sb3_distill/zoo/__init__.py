"""
rl-zoo3 integration: our algorithms in rl-zoo3's registries, their Optuna samplers, and distributed tuning.

:func:`register` adds ``distill_dqn``, ``policy_distill`` and ``distill_ppo`` to rl-zoo3's ``ALGOS``,
``HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER`` in place. ``sb3-distill train`` (see :mod:`sb3_distill.cli`)
then runs rl-zoo3's own ``train()`` with :class:`DistillExperimentManager`. One module per concern:

* :mod:`~sb3_distill.zoo.registry`: the algorithms (one line each), :func:`register`, the packaged hyperparameters;
* :mod:`~sb3_distill.zoo.samplers`: Optuna samplers and converters;
* :mod:`~sb3_distill.zoo.teacher_cache`: teachers loaded once per process;
* :mod:`~sb3_distill.zoo.config`: checks of a hyperparameter entry, the env settings a student takes from its teacher;
* :mod:`~sb3_distill.zoo.storage`: journal file or database storage, heartbeats, retries;
* :mod:`~sb3_distill.zoo.tuning`: the tuning loop that recovers the trials of dead workers, the report;
* :mod:`~sb3_distill.zoo.experiment`: the ``ExperimentManager`` subclass.
"""

from sb3_distill.zoo.config import ConfigError, check_hyperparams_file, check_hyperparams_keys, teacher_env_settings
from sb3_distill.zoo.experiment import DistillExperimentManager, TrialError
from sb3_distill.zoo.registry import (
    ALGO_NAMES,
    ALGORITHMS,
    CONVERTERS,
    HYPERPARAMS_DIR,
    SAMPLERS,
    ZooAlgorithm,
    algorithms,
    packaged_hyperparams,
    register,
)
from sb3_distill.zoo.samplers import tuning_with
from sb3_distill.zoo.storage import StorageError, heartbeat_interval, open_storage
from sb3_distill.zoo.teacher_cache import cached_teacher

__all__ = [
    "ALGORITHMS",
    "ALGO_NAMES",
    "CONVERTERS",
    "HYPERPARAMS_DIR",
    "SAMPLERS",
    "ConfigError",
    "DistillExperimentManager",
    "StorageError",
    "TrialError",
    "ZooAlgorithm",
    "algorithms",
    "cached_teacher",
    "check_hyperparams_file",
    "check_hyperparams_keys",
    "heartbeat_interval",
    "open_storage",
    "packaged_hyperparams",
    "register",
    "teacher_env_settings",
    "tuning_with",
]
