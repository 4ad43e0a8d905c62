"""
Checks of a hyperparameter entry before anything is written, and the env settings a student takes from its teacher.

Every error is a :class:`ConfigError` whose message says what to change.
"""

import difflib
import inspect
import os
from collections.abc import Sequence
from typing import Any

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule

from sb3_distill.teachers import Teacher
from sb3_distill.teachers.envs import wrapper_import_error

# Keys rl-zoo3 reads from a hyperparameter entry itself (they never reach the algorithm).
_ZOO_KEYS = (
    "n_timesteps",
    "n_envs",
    "normalize",
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
    "noise_type",
    "noise_std",
)
# Keyword arguments rl-zoo3 passes to the algorithm from its own flags.
_FLAG_KEYS = {
    "env": "--env",
    "seed": "--seed",
    "verbose": "--verbose",
    "device": "--device",
    "tensorboard_log": "--tensorboard-log",
}
#: The keys of a teacher's ``config.yml`` that shape the observations it was trained on: a student without them in
#: its own entry trains on the teacher's (rl-zoo3 then writes them to the student's ``config.yml``, so ``enjoy`` and
#: ``-i`` rebuild the same env).
TEACHER_ENV_KEYS: tuple[str, ...] = ("env_wrapper", "vec_env_wrapper", "frame_stack")
#: Keys of a teacher share β (PolicyDistill's ``data_policy``), which may be written as rl-zoo3 writes schedules.
_TEACHER_SHARE_KEYS: tuple[str, ...] = ("data_policy",)
#: Keys naming classes that rl-zoo3 imports (``rl_zoo3.utils.get_wrapper_class``).
_WRAPPER_KEYS: tuple[str, ...] = ("env_wrapper", "vec_env_wrapper")


class ConfigError(ValueError):
    """A hyperparameter file or command line that cannot work; the message says how to fix it."""


def check_hyperparams_file(path: str, env_id: str, algo: str, is_atari: bool = False) -> None:
    """
    Raise :class:`ConfigError` unless the YAML file exists and has an entry rl-zoo3 will use for ``env_id``.

    :param path: the hyperparameter file (``.py`` files and modules are left to rl-zoo3)
    :param env_id: the env
    :param algo: the algorithm (for the message)
    :param is_atari: rl-zoo3 falls back to an ``atari`` entry for Atari games
    """
    if not path.endswith((".yml", ".yaml")):
        return
    if not os.path.isfile(path):
        raise ConfigError(f"No hyperparameter file {path} for --algo {algo}: give one with -conf FILE.yml.")
    with open(path) as file:
        entries = yaml.safe_load(file) or {}
    if env_id in entries or "default" in entries or (is_atari and "atari" in entries):
        return
    raise ConfigError(
        f"{path} has no hyperparameters for {env_id} (--algo {algo}). It has: {', '.join(map(str, entries))}. "
        f"Pick one of those envs, add an '{env_id}:' entry, or give another file with -conf."
    )


def check_hyperparams_keys(algo: str, cls: type[BaseAlgorithm], hyperparams: dict[str, Any], sources: str) -> None:
    """
    Raise :class:`ConfigError` for a key neither the algorithm nor rl-zoo3 knows, instead of a ``TypeError`` later.

    :param algo: rl-zoo3 name of the algorithm
    :param cls: its class
    :param hyperparams: the keys left once rl-zoo3 took its own (``n_timesteps``, ``normalize``...)
    :param sources: where they came from, for the message
    """
    parameters = inspect.signature(cls.__init__).parameters
    if any(param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters.values()):
        return
    known = [name for name in parameters if name not in ("self", "env", "_init_setup_model")]
    # Old names of renamed keywords still work (the algorithm warns and names the new one)
    known_old = getattr(cls, "renamed_keywords", {})
    for key in hyperparams:
        if key in _FLAG_KEYS:
            raise ConfigError(f"'{key}' is set by rl-zoo3's {_FLAG_KEYS[key]} flag; remove it from {sources}.")
        if key not in known and key not in _ZOO_KEYS and key not in known_old:
            close = difflib.get_close_matches(key, [*known, *_ZOO_KEYS], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Unknown hyperparameter '{key}' for {algo} in {sources}.{hint} {cls.__name__} takes: {', '.join(known)}; "
                f"rl-zoo3 itself reads: {', '.join(_ZOO_KEYS)}."
            )


def teacher_env_settings(teachers: Sequence[Teacher], hyperparams: dict[str, Any], sources: str) -> dict[str, Any]:
    """
    The wrappers and frame stacking a student takes from its teachers' ``config.yml`` (see :data:`TEACHER_ENV_KEYS`).

    A key the student's entry sets must equal the teacher's, and all teachers must agree: a teacher fed observations
    it was not trained on acts at random without any error, so a difference fails here, before training.

    :param teachers: the student's teachers (those without a run folder have no ``config`` and add nothing)
    :param hyperparams: the student's hyperparameters (YAML entry and ``-params``)
    :param sources: where those came from, for the message
    :return: the keys to add to the student's hyperparameters
    """
    settings: dict[str, Any] = {}
    for key in TEACHER_ENV_KEYS:
        given = [(teacher, teacher.config[key]) for teacher in teachers if teacher.config.get(key) is not None]
        if not given:
            continue
        first, value = given[0]
        for other, other_value in given[1:]:
            if other_value != value:
                raise ConfigError(
                    f"The teachers were trained with different {key}: {value!r} ({first.source}) and {other_value!r} "
                    f"({other.source}). Distil from teachers that saw the same observations."
                )
        if hyperparams.get(key) is None:
            settings[key] = value
        elif hyperparams[key] != value:
            raise ConfigError(
                f"The student's {key} {hyperparams[key]!r} (from {sources}) differs from its teacher's {value!r} (in "
                f"the config.yml of {first.source}): the teacher would see observations it was not trained on. Remove "
                f"{key} from the student's entry to train on the teacher's, or set it to {value!r}."
            )
    return settings


def check_wrappers_importable(hyperparams: dict[str, Any], origins: dict[str, str]) -> None:
    """
    Raise :class:`ConfigError` for an ``env_wrapper`` / ``vec_env_wrapper`` that cannot be imported.

    :param hyperparams: the hyperparameters rl-zoo3 will read
    :param origins: where each key came from, for the message (default: the student's entry)
    """
    for key in _WRAPPER_KEYS:
        if (error := wrapper_import_error(hyperparams, key)) is not None:
            raise ConfigError(
                f"The {key} {hyperparams[key]!r} ({origins.get(key, 'from the student entry')}) cannot be imported: "
                f"{error}. Install the package that provides it, or correct the name (module.Class)."
            ) from error


def convert_teacher_share(hyperparams: dict[str, Any], sources: str) -> dict[str, Any]:
    """
    Read ``data_policy: lin_X`` as rl-zoo3 reads ``learning_rate: lin_X``: a value decaying linearly from X to 0 over
    the run, here the teacher share β (SB3's ``LinearSchedule(X, 0.0, 1.0)``, DAgger-style: the teacher acts at first,
    the student at the end). ``student``, ``teacher`` and a number pass unchanged; anything else is an error now,
    before rl-zoo3 creates the log folder.

    :param hyperparams: the hyperparameters rl-zoo3 will pass to the algorithm (changed in place)
    :param sources: where they came from, for the message
    :return: ``hyperparams``
    """
    from sb3_distill.policy_distill.policy_distill import teacher_share_schedule

    for key in _TEACHER_SHARE_KEYS:
        value = hyperparams.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            try:
                start = float(value[len("lin_") :])
            except ValueError:
                start = float("nan")
            if not 0.0 <= start <= 1.0:
                raise ConfigError(
                    f"{key}: {value} (from {sources}): lin_X is a teacher share decaying linearly from X to 0, and X "
                    "must be a number in [0, 1], e.g. lin_1.0."
                )
            hyperparams[key] = LinearSchedule(start, 0.0, 1.0)
        elif value is not None:
            try:
                teacher_share_schedule(value)
            except (TypeError, ValueError) as error:
                raise ConfigError(
                    f"{key}: {value!r} (from {sources}): {error} In YAML: lin_1.0 for a linear decay."
                ) from error
    return hyperparams
