"""
rl-zoo3 integration: our algorithms in rl-zoo3's registries, their Optuna samplers, and the storage for distributed tuning.

:func:`register` adds ``distill_dqn`` and ``policy_distill`` to rl-zoo3's ``ALGOS``, ``HYPERPARAMS_SAMPLER`` and
``HYPERPARAMS_CONVERTER`` in place. ``sb3-distill train`` (see :mod:`sb3_distill.cli`) then runs rl-zoo3's own
``train()`` with :class:`DistillExperimentManager`, an rl-zoo3 ``ExperimentManager`` that only adds what
distillation and distributed tuning need:

* without ``-conf``, our packaged ``hyperparams/{algo}.yml`` (rl-zoo3's own file for its stock algorithms);
* bad input fails before any file is written: a YAML without the env, an unknown hyperparameter, a teacher
  spec that does not resolve, a storage that cannot be reached;
* teachers are loaded once per process and shared by every Optuna trial;
* an error inside ``learn()`` fails the run (rl-zoo3 turns ``ValueError``/``AssertionError`` into pruned trials);
* ``--storage x.log`` is an Optuna journal file, ``--storage postgresql://...`` an RDB storage with heartbeats, so
  the trial of a killed worker is failed and retried by the others; ``--trial-id 0`` works (rl-zoo3 skips 0).
"""

import difflib
import inspect
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import get_device

from sb3_distill.distill_dqn.recipes import RECIPES
from sb3_distill.errors import TeacherError
from sb3_distill.losses import KL_DIRECTIONS
from sb3_distill.teachers import Teacher, load_teacher

#: The algorithms this package adds to rl-zoo3, by their ``--algo`` name.
ALGO_NAMES: tuple[str, ...] = ("distill_dqn", "policy_distill")
#: Our rl-zoo3 hyperparameter files (the repository's top-level ``hyperparams/``, shipped inside the package).
HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"
HEARTBEAT_ENV_VAR = "SB3_DISTILL_HEARTBEAT"
STORAGE_TIMEOUT_ENV_VAR = "SB3_DISTILL_STORAGE_TIMEOUT"
#: Seconds between two heartbeats of a running trial in an RDB storage; a trial silent for twice that is failed.
DEFAULT_HEARTBEAT_INTERVAL = 60
#: Seconds to wait for a database server before giving up.
DEFAULT_STORAGE_TIMEOUT = 10
#: How many times the trial of a dead worker is retried.
MAX_RETRY = 3
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


class ConfigError(ValueError):
    """A hyperparameter file or command line that cannot work; the message says how to fix it."""


class StorageError(RuntimeError):
    """An Optuna storage that is malformed or cannot be reached."""


class TrialError(RuntimeError):
    """An error inside a trial's ``learn()``: the study stops instead of pruning the trial."""


# ---------------------------------------------------------------------------------------------- algorithms
def algorithms() -> dict[str, type[BaseAlgorithm]]:
    """
    :return: our algorithm classes by rl-zoo3 name (imported on first use: they pull in SB3's heavy modules)
    """
    from sb3_distill.distill_dqn import DistillDQN
    from sb3_distill.policy_distill import PolicyDistill

    return {"distill_dqn": DistillDQN, "policy_distill": PolicyDistill}


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


# ---------------------------------------------------------------------------------------------- teachers
_TEACHERS: dict[tuple[str, str, str], Teacher] = {}
_TEACHERS_LOCK = threading.Lock()


def cached_teacher(spec: Any, device: Any = "auto") -> Teacher:
    """
    ``load_teacher(spec)``, loaded once per process: every trial of a study shares the same frozen teacher.

    :param spec: any spec :func:`~sb3_distill.load_teacher` takes
    :param device: torch device
    :return: the teacher
    """
    if not isinstance(spec, (str, os.PathLike)):
        return load_teacher(spec, device=device)
    # Zoo ids and relative paths depend on the working directory.
    key = (str(spec), os.getcwd(), str(get_device(device)))
    with _TEACHERS_LOCK:
        if key not in _TEACHERS:
            _TEACHERS[key] = load_teacher(spec, device=device)
        return _TEACHERS[key]


def _teacher_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class _Capabilities:
    """What every teacher of the study offers, so samplers only propose losses they can compute."""

    q_values: bool = True
    discrete: bool = True
    distribution: bool = True
    critic: bool = True


_study_capabilities = _Capabilities()


@contextmanager
def _tuning_with(teachers: Sequence[Teacher]) -> Iterator[None]:
    """Let the samplers see the teachers of the study being tuned in this process."""
    global _study_capabilities
    previous = _study_capabilities
    if teachers:
        _study_capabilities = _Capabilities(
            q_values=all(teacher.has_q_values for teacher in teachers),
            discrete=all(teacher.is_discrete for teacher in teachers),
            distribution=all(teacher.has_distribution for teacher in teachers),
            critic=all(teacher.has_critic for teacher in teachers),
        )
    try:
        yield
    finally:
        _study_capabilities = previous


# ---------------------------------------------------------------------------------------------- samplers
NET_WIDTHS: tuple[int, ...] = (16, 32, 64, 128, 256)
TEACHER_PHASES: tuple[int, ...] = (0, 1000, 5000)


def _sample_student(trial: optuna.Trial) -> dict[str, Any]:
    """Width and depth of the student network (the point of distillation is a smaller one)."""
    width = trial.suggest_categorical("net_width", NET_WIDTHS)
    depth = trial.suggest_int("net_depth", 1, 3)
    trial.set_user_attr("net_arch", [width] * depth)
    return {"net_width": width, "net_depth": depth}


def _convert_student(params: dict[str, Any], hyperparams: dict[str, Any]) -> None:
    hyperparams["policy_kwargs"] = {"net_arch": [params.pop("net_width")] * params.pop("net_depth")}


def _sample_off_policy(trial: optuna.Trial, gamma: bool = True) -> dict[str, Any]:
    """The off-policy parameters every student has, in rl-zoo3's ranges."""
    params: dict[str, Any] = {}
    if gamma:
        params["one_minus_gamma"] = trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
        trial.set_user_attr("gamma", 1 - params["one_minus_gamma"])
    params["batch_size_pow"] = trial.suggest_int("batch_size_pow", 4, 8)
    trial.set_user_attr("batch_size", 2 ** params["batch_size_pow"])
    params["learning_rate"] = trial.suggest_float("learning_rate", 1e-5, 0.003, log=True)
    train_freq = params["train_freq"] = trial.suggest_int("train_freq", 1, 10)
    params["subsample_steps"] = trial.suggest_int("subsample_steps", 1, min(train_freq, 8))
    return params


def _convert_off_policy(params: dict[str, Any], hyperparams: dict[str, Any]) -> None:
    if "one_minus_gamma" in params:
        hyperparams["gamma"] = 1 - params.pop("one_minus_gamma")
    hyperparams["batch_size"] = 2 ** params.pop("batch_size_pow")
    hyperparams["learning_rate"] = params.pop("learning_rate")
    hyperparams["train_freq"] = params.pop("train_freq")
    # One gradient step per env step, or fewer (rl-zoo3's DQN sampler)
    hyperparams["gradient_steps"] = max(hyperparams["train_freq"] // params.pop("subsample_steps"), 1)


def _recipe_fits(recipe: str, capabilities: _Capabilities) -> bool:
    if recipe == "custom":
        return True
    settings = RECIPES[recipe]
    return capabilities.q_values or (settings["td_target"] != "teacher" and settings["distill_loss"] != "mse")


def sample_distill_dqn_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Optuna sampler for DistillDQN (rl-zoo3's sampler signature).

    DQN's own parameters (rl-zoo3's ranges), the student's width and depth, and the distillation: a named
    ``recipe`` with its temperature T and coefficient α tuned around it (QDagger keeps its own α schedule), or
    ``recipe="custom"``: loss, KL direction, T, T² scaling, TD target, α (a constant or the QDagger rule) and the
    length of the teacher phase. Only choices the study's teacher supports are proposed (a policy-only teacher
    has no Q-values for ``td_target="teacher"`` or ``distill_loss="mse"``).

    :param trial: the Optuna trial
    :param n_actions: unused (rl-zoo3's signature)
    :param n_envs: unused
    :param additional_args: unused
    :return: DistillDQN keyword arguments: ``convert_distill_dqn_params(trial.params)``
    """
    capabilities = _study_capabilities
    params = _sample_off_policy(trial)
    params["exploration_fraction"] = trial.suggest_float("exploration_fraction", 0, 0.5)
    params["exploration_final_eps"] = trial.suggest_float("exploration_final_eps", 0, 0.2)
    params["target_update_interval"] = trial.suggest_int("target_update_interval", 1, 20000, log=True)
    params.update(_sample_student(trial))

    recipes = [name for name in (*RECIPES, "custom") if _recipe_fits(name, capabilities)]
    recipe = params["recipe"] = trial.suggest_categorical("recipe", recipes)
    if recipe == "custom":
        losses = ("kl", "nll", "mse") if capabilities.q_values else ("kl", "nll")
        distill_loss = params["distill_loss"] = trial.suggest_categorical("distill_loss", losses)
        if distill_loss == "kl":
            params["kl_direction"] = trial.suggest_categorical("kl_direction", KL_DIRECTIONS)
        if distill_loss != "mse":
            params["temperature_scaling"] = trial.suggest_categorical("temperature_scaling", [False, True])
        targets = ("student", "teacher", "none") if capabilities.q_values else ("student", "none")
        params["td_target"] = trial.suggest_categorical("td_target", targets)
        params["distill_coef_rule"] = trial.suggest_categorical("distill_coef_rule", ["constant", "qdagger"])
        params["teacher_phase"] = trial.suggest_categorical("teacher_phase", TEACHER_PHASES)
    distill_loss = params.get("distill_loss", "kl")  # every named recipe uses a KL
    if distill_loss != "mse":
        params["temperature"] = trial.suggest_float("temperature", 0.01, 20, log=True)
    if (recipe == "custom" and params["distill_coef_rule"] == "constant") or recipe in ("seed", "policy_distillation"):
        params["distill_coef"] = trial.suggest_float("distill_coef", 0.01, 10, log=True)
    return convert_distill_dqn_params(params)


def convert_distill_dqn_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into DistillDQN keyword arguments (so ``--trial-id N`` rebuilds trial N).

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_distill_dqn_params`
    :return: keyword arguments
    """
    params = dict(sampled_params)
    hyperparams: dict[str, Any] = {}
    _convert_off_policy(params, hyperparams)
    _convert_student(params, hyperparams)
    recipe = params.pop("recipe")
    if recipe == "custom":
        # Every keyword is explicit; the "qdagger" base only fills those that the sampled loss does not use.
        hyperparams["recipe"] = "qdagger"
        rule = params.pop("distill_coef_rule")
        hyperparams["distill_coef"] = "qdagger" if rule == "qdagger" else params.pop("distill_coef")
        phase = params.pop("teacher_phase")
        hyperparams["teacher_rollout_steps"] = hyperparams["pretrain_gradient_steps"] = phase
        hyperparams["temperature_scaling"] = params.pop("temperature_scaling", False)
    else:
        hyperparams["recipe"] = recipe
    hyperparams.update(params)
    return hyperparams


def sample_policy_distill_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    Optuna sampler for PolicyDistill (rl-zoo3's sampler signature).

    The off-policy parameters (learning rate, batch size, update frequency), the student's width and depth, the
    policy loss with its KL direction and temperature T (discrete teachers), the weight α of value distillation
    (``value_coef``, or none), and who acts (``data_policy``: the student, the teacher, or a teacher share β). Only
    losses every teacher of the study supports are proposed.

    :param trial: the Optuna trial
    :param n_actions: unused (rl-zoo3's signature)
    :param n_envs: unused
    :param additional_args: unused
    :return: PolicyDistill keyword arguments: ``convert_policy_distill_params(trial.params)``
    """
    capabilities = _study_capabilities
    params = _sample_off_policy(trial, gamma=False)  # the student learns no return: PolicyDistill has no gamma
    params.update(_sample_student(trial))
    if capabilities.discrete:
        losses: tuple[str, ...] = ("kl", "nll")
    else:
        losses = ("kl", "mse", "nll") if capabilities.distribution else ("mse", "nll")
    policy_loss = params["policy_loss"] = trial.suggest_categorical("policy_loss", losses)
    if policy_loss == "kl":
        params["kl_direction"] = trial.suggest_categorical("kl_direction", KL_DIRECTIONS)
    if capabilities.discrete:
        params["temperature"] = trial.suggest_float("temperature", 0.01, 20, log=True)
    value_distillation = capabilities.critic and trial.suggest_categorical("value_distillation", [False, True])
    params["value_distillation"] = value_distillation
    if value_distillation:
        params["value_coef"] = trial.suggest_float("value_coef", 0.01, 2, log=True)
    data_policy = params["data_policy"] = trial.suggest_categorical("data_policy", ["student", "teacher", "mixed"])
    if data_policy == "mixed":
        params["teacher_share"] = trial.suggest_float("teacher_share", 0.05, 0.95)
    return convert_policy_distill_params(params)


def convert_policy_distill_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into PolicyDistill keyword arguments (so ``--trial-id N`` rebuilds trial N).

    :param sampled_params: ``trial.params`` of a trial of :func:`sample_policy_distill_params`
    :return: keyword arguments
    """
    params = dict(sampled_params)
    hyperparams: dict[str, Any] = {}
    _convert_off_policy(params, hyperparams)
    _convert_student(params, hyperparams)
    if not params.pop("value_distillation", False):
        hyperparams["value_coef"] = 0.0
    if params["data_policy"] == "mixed":
        params["data_policy"] = params.pop("teacher_share")
    hyperparams.update(params)
    return hyperparams


SAMPLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "distill_dqn": sample_distill_dqn_params,
    "policy_distill": sample_policy_distill_params,
}
CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "distill_dqn": convert_distill_dqn_params,
    "policy_distill": convert_policy_distill_params,
}


# ---------------------------------------------------------------------------------------------- storage
def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"${name} must be a positive number of seconds, not {value!r}.")
    return number


def heartbeat_interval() -> int:
    """
    :return: seconds between heartbeats of a running trial (``$SB3_DISTILL_HEARTBEAT``, default 60)
    """
    return _env_int(HEARTBEAT_ENV_VAR, DEFAULT_HEARTBEAT_INTERVAL)


def _retry_callback() -> tuple[str, Any]:
    """Optuna's callback that puts a heartbeat-stale trial back in the queue (renamed in Optuna 4.9)."""
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is not None:
        return "heartbeat_stale_trial_callback", retry(max_retry=MAX_RETRY)
    return "failed_trial_callback", optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def open_storage(storage: str) -> BaseStorage:
    """
    The Optuna storage behind ``--storage``: a journal file for the processes of one machine, or a database for many.

    * ``path.log``: ``JournalStorage(JournalFileBackend(path))`` (file locks; no heartbeat, so a killed worker's
      trial stays ``RUNNING``);
    * a database URL (``postgresql://user:password@host:5432/db``, ``mysql://...``, ``sqlite:///file.db``):
      ``RDBStorage`` with a heartbeat every ``$SB3_DISTILL_HEARTBEAT`` s (60): a trial whose worker stopped
      beating for two intervals is failed and retried (up to 3 times) by the other workers. The connection is
      checked now and gives up after ``$SB3_DISTILL_STORAGE_TIMEOUT`` s (10).

    :param storage: the ``--storage`` value
    :return: the storage
    """
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(storage))
    if "://" not in storage:
        raise StorageError(
            f"--storage {storage!r} is neither a journal file (a path ending in .log, for several processes on one "
            "machine) nor a database URL (postgresql://user:password@host:5432/db, for several machines)."
        )
    if storage.startswith("postgres://"):
        storage = "postgresql://" + storage[len("postgres://") :]  # SQLAlchemy only knows the long name
    shown = _hide_password(storage)
    if storage.startswith("postgresql://"):
        storage = _with_installed_driver(storage)
    return _rdb_storage(storage, shown)


def _with_installed_driver(url: str) -> str:
    """SQLAlchemy's default PostgreSQL driver is psycopg2 (< 2.1) or psycopg 3 (2.1+): use whichever is installed."""
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + url[len("postgresql://") :]
    return url


def _rdb_storage(url: str, shown: str) -> RDBStorage:
    import sqlalchemy.exc

    timeout = _env_int(STORAGE_TIMEOUT_ENV_VAR, DEFAULT_STORAGE_TIMEOUT)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    dialect = url.split(":", 1)[0].split("+")[0]
    if dialect in ("postgresql", "mysql", "mariadb"):
        engine_kwargs["connect_args"] = {"connect_timeout": timeout}
    attempt = 0
    while True:
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental in Optuna; they are what makes a killed worker harmless here.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", FutureWarning)
                callback_name, callback = _retry_callback()
                return RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval(), **{callback_name: callback}
                )
        except ImportError as error:
            driver = (
                "a driver: pip install 'sb3-distill[postgres]' (psycopg2-binary)" if dialect == "postgresql" else "its driver"
            )
            raise StorageError(f"The storage {shown} needs {driver} ({error.__cause__ or error}).") from error
        except sqlalchemy.exc.ArgumentError as error:
            raise StorageError(f"--storage {shown} is not a valid database URL: {error}") from error
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Workers started together on an empty database race to create Optuna's tables: the loser tries again.
            attempt += 1
            if attempt == 5:
                raise StorageError(f"Could not set up Optuna's tables in {shown}: {error.orig or error}") from error
            time.sleep(attempt)
        except sqlalchemy.exc.DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
            raise StorageError(
                f"Cannot reach the Optuna storage {shown}: {reason}. Check that the database server runs and accepts "
                "connections from this machine (host, port, user, password, database name, pg_hba.conf)."
            ) from error


def _is_heartbeat_enabled(storage: BaseStorage | None) -> bool:
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


# ---------------------------------------------------------------------------------------------- checks
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
    for key in hyperparams:
        if key in _FLAG_KEYS:
            raise ConfigError(f"'{key}' is set by rl-zoo3's {_FLAG_KEYS[key]} flag; remove it from {sources}.")
        if key not in known and key not in _ZOO_KEYS:
            close = difflib.get_close_matches(key, [*known, *_ZOO_KEYS], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Unknown hyperparameter '{key}' for {algo} in {sources}.{hint} {cls.__name__} takes: {', '.join(known)}; "
                f"rl-zoo3 itself reads: {', '.join(_ZOO_KEYS)}."
            )


# ---------------------------------------------------------------------------------------------- experiment manager
class DistillExperimentManager(ExperimentManager):
    """
    rl-zoo3's ``ExperimentManager`` (same arguments; see ``rl_zoo3/train.py``), with our defaults and checks.

    Without ``config``, our packaged ``hyperparams/{algo}.yml`` is used when we ship one. Storage, teachers and the
    hyperparameters are checked before any file is written, and the Optuna loop runs on :func:`open_storage`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        packaged = packaged_hyperparams(self.algo)
        if kwargs.get("config") is None and packaged is not None:
            self.config = str(packaged)
        self._teachers: list[Teacher] = []
        if self.trial_id is not None and (self.storage is None or self.study_name is None):
            raise ConfigError("--trial-id N reads trial N of a stored study: give its --storage and --study-name too.")
        self._opened_storage: BaseStorage | None = None

    def _optuna_storage(self) -> BaseStorage | None:
        """The ``--storage`` of this run, opened (and so checked) once."""
        if self._opened_storage is None and self.storage is not None:
            self._opened_storage = open_storage(self.storage)
        return self._opened_storage

    # ------------------------------------------------------------------ hyperparameters
    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        check_hyperparams_file(self.config, self.env_name.gym_id, self.algo, self._is_atari)
        if self.trial_id == 0:
            # rl-zoo3 tests `if self.trial_id:` and so would ignore trial 0; its order is kept: trial, then -params.
            trial_params = self.load_trial(self.storage, self.study_name, 0)  # type: ignore[arg-type]
            self.custom_hyperparams = {**trial_params, **(self.custom_hyperparams or {})}
        return super().read_hyperparameters()

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict[str, Any]:
        optuna_storage = self._optuna_storage() if storage == self.storage else None
        optuna_storage = optuna_storage or open_storage(storage)
        try:
            study = optuna.load_study(study_name=study_name, storage=optuna_storage)
        except KeyError as error:
            names = ", ".join(optuna.get_all_study_names(optuna_storage)) or "none"
            raise ConfigError(f"No study {study_name!r} in {storage} (it has: {names}).") from error
        if trial_id is None:
            params = study.best_trial.params
        else:
            trial = next((trial for trial in study.trials if trial.number == trial_id), None)
            if trial is None:
                raise ConfigError(
                    f"Study {study_name!r} has no trial {trial_id} (it has trials 0 to {len(study.trials) - 1})."
                )
            params = trial.params
        if not convert:
            return params
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER

        return HYPERPARAMS_CONVERTER[self.algo](params)

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, Any]:
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        from rl_zoo3.utils import ALGOS

        sources = self.config + (" or -params" if self.custom_hyperparams else "")
        check_hyperparams_keys(self.algo, ALGOS[self.algo], hyperparams, sources)
        if "teacher" in hyperparams:
            self._load_teachers(hyperparams)
        elif self.algo in ALGO_NAMES and not self.continue_training:
            raise ConfigError(
                f"--algo {self.algo} needs a teacher: add 'teacher: dqn/{self.env_name.gym_id}' (or any spec of "
                f"load_teacher) to {self.config}'s {self.env_name.gym_id} entry, or pass -params teacher:SPEC."
            )
        if self.optimize_hyperparameters:
            # Connect now, the rest being checked: an unreachable database fails in seconds, before anything is written.
            self._optuna_storage()
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper

    def _load_teachers(self, hyperparams: dict[str, Any]) -> None:
        """Resolve the teacher spec(s) now, once: a wrong one fails before any file is written."""
        specs = hyperparams["teacher"]
        try:
            self._teachers = [cached_teacher(spec, self.device) for spec in _teacher_list(specs)]
        except TeacherError as error:
            raise TeacherError(
                f"The teacher of --algo {self.algo} --env {self.env_name.gym_id} ({specs!r}): {error}"
            ) from error
        if self.optimize_hyperparameters:
            # Trials get the loaded teachers; a training run keeps the spec, which the student's zip records.
            loaded = self._teachers if isinstance(specs, (list, tuple)) else self._teachers[0]
            hyperparams["teacher"] = loaded

    # ------------------------------------------------------------------ tuning
    def objective(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            return super().objective(trial)
        except optuna.TrialPruned as pruned:
            cause = pruned.__cause__
            if cause is None or self.algo not in ALGO_NAMES:
                raise
            # rl-zoo3 prunes trials whose learn() raised ValueError/AssertionError (NaNs of random hyperparameters);
            # for a student that hides real errors (a teacher that does not fit, a broken loss), so stop the study.
            raise TrialError(f"Trial {trial.number} failed inside learn(): {type(cause).__name__}: {cause}") from cause

    def hyperparameters_optimization(self) -> None:
        """
        rl-zoo3's tuning loop (sampler, pruner, ``--n-trials``, ``--max-total-trials``, report) on
        :func:`open_storage`, so that the trial of a worker that died is failed, retried, and waited for.
        """
        if self.verbose > 0:
            print("Optimizing hyperparameters")
        if self.storage is not None and self.study_name is None:
            warnings.warn(
                f"You passed the storage {self.storage} but no --study-name: Optuna makes up a name, which the other "
                "workers cannot know. Give every worker the same --study-name."
            )
        if self.tensorboard_log is not None:
            warnings.warn("Tensorboard log is deactivated when running hyperparameter optimization")
            self.tensorboard_log = None
        if self.verbose > 0:
            print(f"Sampler: {self.sampler} - Pruner: {self.pruner}")
        study = optuna.create_study(
            sampler=self._create_sampler(self.sampler),
            pruner=self._create_pruner(self.pruner),
            storage=self._optuna_storage(),
            study_name=self.study_name,
            load_if_exists=True,
            direction="maximize",
        )
        if "command" not in study.user_attrs:
            study.set_user_attr("command", " ".join(sys.orig_argv))
            for key in sorted(self._hyperparams):
                study.set_user_attr(key, str(self._hyperparams[key]))
        with _tuning_with(self._teachers):
            try:
                self._optimize(study)
            except KeyboardInterrupt:
                pass
        self._report(study)

    def _optimize(self, study: optuna.Study) -> None:
        if self.max_total_trials is None:
            study.optimize(self.objective, n_jobs=self.n_jobs, n_trials=self.n_trials, gc_after_trial=True)
            return
        # rl-zoo3 counts running trials so that N workers do not run N - 1 trials too many.
        counted = [TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED]
        heartbeat = _is_heartbeat_enabled(self._optuna_storage())
        while True:
            if heartbeat:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, then a WAITING copy
            states = [trial.state for trial in study.get_trials(deepcopy=False)]
            finished = sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states)
            running, waiting = states.count(TrialState.RUNNING), states.count(TrialState.WAITING)
            if finished >= self.max_total_trials:
                return
            if finished + running >= self.max_total_trials and waiting == 0:
                if not heartbeat:
                    return  # the other workers finish the last trials (a dead one cannot be told from a slow one)
                # One of those running trials may belong to a dead worker: stay to run its retry when its heartbeat
                # goes stale, and leave as soon as the others have finished theirs.
                time.sleep(min(heartbeat_interval(), 2))
                continue
            study.optimize(
                self.objective,
                n_jobs=self.n_jobs,
                callbacks=[MaxTrialsCallback(self.max_total_trials, states=counted)],
                gc_after_trial=True,
            )

    def _report(self, study: optuna.Study) -> None:
        """rl-zoo3's report: best trial, ``report_*.csv`` and ``.pkl`` in the log folder, optional plots."""
        import pickle

        print("Number of finished trials: ", len(study.trials))
        completed = study.get_trials(deepcopy=False, states=[TrialState.COMPLETE])
        if completed:
            trial = study.best_trial
            print("Best trial:")
            print("Value: ", trial.value)
            print("Params: ")
            for key, value in trial.params.items():
                print(f"    {key}: {value}")
            print("User Attributes: ")
            for key, value in trial.user_attrs.items():
                print(f"    {key}: {value}")
        report_name = (
            f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
        )
        log_path = os.path.join(self.log_folder, self.algo, report_name)
        if self.verbose:
            print(f"Writing report to {log_path}")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        study.trials_dataframe().to_csv(f"{log_path}.csv")
        with open(f"{log_path}.pkl", "wb+") as file:
            pickle.dump(study, file)
        if self.no_optim_plots or not completed:
            return
        try:
            from optuna.visualization import plot_optimization_history, plot_param_importances

            plot_optimization_history(study).show()
            plot_param_importances(study).show()
        except (ValueError, ImportError, RuntimeError):
            pass
