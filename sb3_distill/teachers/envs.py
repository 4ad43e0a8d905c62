"""
The teacher's env: which of today's env ids an old agent runs on, and the env as rl-zoo3 built it for the agent.

Zoo agents were recorded on ids that may no longer be makeable (MuJoCo ``-v3`` envs need the long-gone mujoco-py):
:func:`resolve_env_id` maps such an id to the newest registered version that can be made *and* gives the agent's
observation and action spaces (with its wrappers), and refuses clearly when none does. :func:`make_teacher_env`
builds the env from the run folder's hyperparameters with rl-zoo3's own helpers.
"""

import tempfile
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, get_env_id, parse_env_id
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.teachers.legacy import canonical_env_id, legacy_env_ids
from sb3_distill.teachers.spaces import space_mismatches

#: The hyperparameters (config.yml) that shape the env rl-zoo3 builds; the rest concerns the algorithm.
ENV_HYPERPARAMS = ("env_wrapper", "vec_env_wrapper", "frame_stack")
MUJOCO_EXTRA = 'pip install "sb3-distill[mujoco]"'
#: MuJoCo envs whose v2/v3 observations hold contact forces, which mujoco-py >= 2.0 returned as zeros; v4 computes
#: them and v5 counts them differently (Ant: 111 -> 105, Humanoid: 376 -> 348).
CONTACT_FORCE_ENVS = ("Ant", "Humanoid", "HumanoidStandup")

_probed: dict[tuple[str, str], tuple[spaces.Space, spaces.Space] | Exception] = {}


def is_mujoco(spec: EnvSpec) -> bool:
    """
    :param spec: a registered env's spec
    :return: whether gymnasium builds it with MuJoCo (or, for v2/v3, with mujoco-py)
    """
    entry_point = spec.entry_point
    where = (
        entry_point
        if isinstance(entry_point, str)
        else getattr(entry_point, "__module__", "") + getattr(entry_point, "__name__", "")
    )
    return "mujoco" in where


def quiet_mujoco_log() -> None:
    """
    Send MuJoCo's log file (``MUJOCO_LOG.TXT``, written on every warning) to the temp folder instead of the working
    directory, unless the user chose a log file already. Warnings are still printed.
    """
    try:
        import mujoco
    except ImportError:
        return
    if not hasattr(mujoco, "MjLogConfig"):  # older mujoco: no way to move the file
        return
    config = mujoco.MjLogConfig.get()
    if config.logfile == "MUJOCO_LOG.TXT":  # MuJoCo's default, relative to the working directory
        config.logfile = str(Path(tempfile.gettempdir()) / "MUJOCO_LOG.TXT")
        config.set()


def env_hyperparams(config: dict[str, Any] | None) -> dict[str, Any]:
    """
    :param config: the rl-zoo3 hyperparameters of a run (``config.yml``), or ``None``
    :return: the entries that shape its env (wrappers, frame stacking), as rl-zoo3's helpers take them
    """
    return {key: config[key] for key in ENV_HYPERPARAMS if config and config.get(key) not in (None, 0)}


def _wrapper_names(hyperparams: dict[str, Any], key: str) -> str:
    value = hyperparams[key]
    names = value if isinstance(value, list) else [value]
    return ", ".join(
        str(next(iter(name)) if isinstance(name, dict) else getattr(name, "__qualname__", name)) for name in names
    )


def wrapper_import_error(hyperparams: dict[str, Any], key: str) -> Exception | None:
    """
    :param hyperparams: hyperparameters in rl-zoo3's format
    :param key: ``"env_wrapper"`` or ``"vec_env_wrapper"``
    :return: why rl-zoo3 cannot import the wrapper(s) named under ``key``, or ``None`` (also when there are none)
    """
    from rl_zoo3.utils import get_wrapper_class

    if hyperparams.get(key) is None:
        return None
    try:
        get_wrapper_class(hyperparams, key)
    except (ImportError, AttributeError, ValueError, AssertionError) as error:
        return error
    return None


def check_wrappers(hyperparams: dict[str, Any]) -> None:
    """
    Import the wrappers the hyperparameters name, as rl-zoo3 does, before any env is built.

    :param hyperparams: ``env_wrapper`` / ``vec_env_wrapper`` entries in rl-zoo3's format
    :raises IncompatibleTeacherError: naming the wrapper that cannot be imported
    """
    for key in ("env_wrapper", "vec_env_wrapper"):
        if (error := wrapper_import_error(hyperparams, key)) is not None:
            raise IncompatibleTeacherError(
                f"The teacher's {key} {_wrapper_names(hyperparams, key)} cannot be imported ({type(error).__name__}: "
                f"{error}): install the package that provides it, or build the env yourself."
            ) from error


def make_teacher_env(
    env_id: str | None,
    config: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 1,
    seed: int | None = None,
    vec_env_cls: type[VecEnv] | None = None,
) -> VecEnv:
    """
    The env as rl-zoo3 built it for an agent: its ``env_wrapper``, ``vec_env_wrapper``, ``frame_stack`` and
    ``env_kwargs``, each env ``Monitor``-wrapped, *without* ``VecNormalize`` (a teacher normalizes its own inputs).

    :param env_id: a registered gymnasium id
    :param config: the run's hyperparameters (``config.yml``); ``None``: the plain env
    :param env_kwargs: keyword arguments of the env's constructor
    :param n_envs: number of envs
    :param seed: seed of the first env (the others get ``seed + i``), as ``make_vec_env`` does
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :return: the ``VecEnv``
    """
    from rl_zoo3.utils import create_test_env

    if env_id is None:
        raise IncompatibleTeacherError(
            "make_env() needs the env id the teacher was trained on, and this teacher has none (it was given as a "
            "policy or a model without env): build the env yourself."
        )
    if env_id not in gym.registry:
        raise IncompatibleTeacherError(
            f"make_env(): the teacher's env id {env_id!r} is not registered in gymnasium. Import the package that "
            "registers it first (what rl-zoo3's --gym-packages does), or build the env yourself."
        )
    hyperparams = env_hyperparams(config)
    check_wrappers(hyperparams)
    spec = gym.spec(env_id)
    if is_mujoco(spec):
        quiet_mujoco_log()
    try:
        # rl-zoo3's own builder (Monitor, env_wrapper, vec_env_wrapper, then frame stacking): frame stacking is applied
        # only when a stats path is given, and VecNormalize only when "normalize" is set, which it is not here.
        return create_test_env(
            env_id,
            n_envs=n_envs,
            stats_path="" if "frame_stack" in hyperparams else None,
            seed=seed,  # type: ignore[arg-type]  # make_vec_env takes None: unseeded
            should_render=False,
            hyperparams={**hyperparams, "normalize": False},
            env_kwargs=env_kwargs,
            vec_env_cls=vec_env_cls or DummyVecEnv,
        )
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        raise IncompatibleTeacherError(_cannot_make_message(env_id, spec, error)) from error


def _cannot_make_message(env_id: str, spec: EnvSpec, error: Exception) -> str:
    hint = f" MuJoCo envs need the extra: {MUJOCO_EXTRA}." if is_mujoco(spec) else ""
    return f"The env {env_id} cannot be made here ({type(error).__name__}: {error}).{hint}"


def probe_spaces(
    env_id: str, config: dict[str, Any] | None = None, env_kwargs: dict[str, Any] | None = None
) -> tuple[spaces.Space, spaces.Space]:
    """
    The observation and action spaces of the env :func:`make_teacher_env` builds, measured once per process.

    :param env_id: a registered gymnasium id
    :param config: the run's hyperparameters (wrappers change the spaces)
    :param env_kwargs: keyword arguments of the env's constructor
    :return: ``(observation_space, action_space)``
    :raises IncompatibleTeacherError: when the env cannot be made (the same error on every call)
    """
    key = (env_id, repr((env_hyperparams(config), sorted((env_kwargs or {}).items()))))
    if key not in _probed:
        try:
            with warnings.catch_warnings():
                # gymnasium's "out of date" notice for the old ids probed here is the loader's business, not the user's.
                warnings.simplefilter("ignore", DeprecationWarning)
                env = make_teacher_env(env_id, config, env_kwargs)
            _probed[key] = (env.observation_space, env.action_space)
            env.close()
        except IncompatibleTeacherError as error:
            _probed[key] = error
        except Exception as error:  # whatever the env's constructor raises, once
            failure = IncompatibleTeacherError(_cannot_make_message(env_id, gym.spec(env_id), error))
            failure.__cause__ = error
            _probed[key] = failure
    result = _probed[key]
    if isinstance(result, Exception):
        raise result
    return result


def _other_versions(env_id: str, newer: bool) -> list[str]:
    """Registered versions of the same env, newer (or older) than ``env_id``'s, newest first."""
    namespace, name, version = parse_env_id(env_id)
    if version is None:
        return []
    versions = {spec.version for spec in gym.registry.values() if spec.namespace == namespace and spec.name == name}
    chosen = [v for v in versions if v is not None and (v > version if newer else v < version)]
    return [get_env_id(namespace, name, v) for v in sorted(chosen, reverse=True)]


def _gone(env_id: str) -> bool:
    """Whether a registered env can no longer be made because what it needs is gone (MuJoCo -v3: mujoco-py)."""
    try:
        probe_spaces(env_id)
    except IncompatibleTeacherError as error:
        return isinstance(error.__cause__, (ImportError, gym.error.DependencyNotInstalled))
    return False


def recorded_env_ids(env_id: str) -> list[str]:
    """
    The ids an agent for ``env_id`` may have been recorded under, in the order to look for them: ``env_id``, its
    known old names, then older registered versions that can no longer be made (``HalfCheetah-v5``: ``-v3``, ``-v2``).

    An older version that can still be made is another task (``CartPole-v0`` ends at 200 steps) and is not listed;
    an agent found under a listed id is checked against today's spaces when it is loaded (:func:`resolve_env_id`).

    :param env_id: a current env id
    :return: the ids, ``env_id`` first
    """
    ids = legacy_env_ids(env_id)
    if env_id in gym.registry:
        ids += [old for old in _other_versions(env_id, newer=False) if old not in ids and _gone(old)]
    return ids


def resolve_env_id(
    env_id: str,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    config: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> str:
    """
    Today's id of the env an agent was recorded on: the id itself (after known renames) if it can be made, else the
    newest registered later version that can be made *and* gives the agent's spaces (with its wrappers).

    :param env_id: the id recorded with the agent, e.g. ``HalfCheetah-v3``
    :param observation_space: the agent's observation space
    :param action_space: the agent's action space
    :param config: the run's hyperparameters (wrappers change the spaces)
    :param env_kwargs: keyword arguments of the env's constructor
    :return: e.g. ``HalfCheetah-v5``; an id gymnasium does not know is returned unchanged
    :raises IncompatibleTeacherError: when no version can be made, or none has the agent's spaces
    """
    env_id = canonical_env_id(env_id)
    if env_id not in gym.registry:
        return env_id  # a custom env, registered later (or never): make_env() says so if it is asked for
    try:
        # Without the wrappers: whether the agent's own env still exists (a wrapper that cannot be imported is
        # make_env()'s error to raise, not a reason to substitute another env).
        probe_spaces(env_id, None, env_kwargs)
        return env_id  # never substitute another env for one that exists
    except IncompatibleTeacherError as error:
        if not isinstance(error.__cause__, (ImportError, gym.error.DependencyNotInstalled)):
            return env_id  # it exists but fails here for another reason: make_env() will say why
        first_error = error
    spec = gym.spec(env_id)
    unmade, mismatched = [f"{env_id} ({_reason(first_error)})"], []
    candidates = _other_versions(env_id, newer=True)
    for candidate in candidates:
        try:
            candidate_spaces = probe_spaces(candidate, config, env_kwargs)
        except IncompatibleTeacherError as error:
            unmade.append(f"{candidate} ({_reason(error)})")
            continue
        problems = space_mismatches(observation_space, action_space, *candidate_spaces, expected=f"{candidate}'s")
        if not problems:
            _warn_contact_forces(env_id, candidate)
            return candidate
        mismatched.append("; ".join(problems))
    if not mismatched:
        hint = f" MuJoCo envs need the extra: {MUJOCO_EXTRA}." if is_mujoco(spec) else ""
        raise IncompatibleTeacherError(
            f"The teacher's env {env_id} cannot be made here, nor any later version of it: {'; '.join(unmade)}.{hint}"
        )
    reason = ""
    if is_mujoco(spec) and spec.version is not None and spec.version <= 3 and spec.name in CONTACT_FORCE_ENVS:
        reason = (
            f" {spec.name}-v{spec.version} observations included contact forces, which later versions drop or count "
            "differently, so an agent trained on it cannot be run on them."
        )
    raise IncompatibleTeacherError(
        f"The teacher was trained on {env_id} (observations {_size(observation_space)}, actions {_size(action_space)}), "
        f"which cannot be made today ({_reason(first_error)}), and no later version has its spaces: {' | '.join(mismatched)}."
        f"{reason} "
        f"Use a teacher trained on a current version (e.g. train one with rl-zoo3 on {candidates[0]}), or "
        "load the model yourself (ALGO.load) and pass it as the teacher with an env that has its spaces."
    )


def _reason(error: Exception) -> str:
    cause = error.__cause__ or error  # the error of the env itself, without make_teacher_env's advice
    return f"{type(cause).__name__}: {cause}"


def _size(space: spaces.Space) -> str:
    return str(space.shape) if space.shape is not None else str(space)


def _warn_contact_forces(env_id: str, candidate: str) -> None:
    _, name, version = parse_env_id(env_id)
    if name in CONTACT_FORCE_ENVS and version is not None and version <= 3:
        warnings.warn(
            f"{env_id} runs as {candidate} (same spaces), but its observations include contact forces that mujoco-py "
            f">= 2.0 returned as zeros during the agent's training and {candidate} computes: check the teacher's score "
            "with evaluate_policy(teacher, teacher.make_env()).",
            stacklevel=3,
        )
