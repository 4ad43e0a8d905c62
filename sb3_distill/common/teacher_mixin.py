"""
The teacher seam shared by every algorithm of the package (DistillDQN, PolicyDistill, DistillPPO).

One place for what every distilling algorithm does with its teacher(s): resolve the specs with ``load_teacher``,
check them against the student's spaces (plus the algorithm's own checks, :meth:`TeacherMixin._check_teacher`),
keep them out of saves, refuse to save over a teacher's file, save atomically, and re-resolve the saved specs on
``load(path, env=env)`` so that SB3's ``Model.load(path, env).learn()`` pattern works. It also keeps renamed keywords
working (:mod:`sb3_distill.common.renamed`): their old names in ``load()`` and in models saved before the rename.
And it measures the reference returns (a random policy's and the teacher's) that QDagger's rule and DistillDQN's
``recipe="auto"`` need, one way for every algorithm: ``reference_returns`` is what the user gave (saved with the
model, like any keyword); returns measured because it was ``None`` are kept apart and not saved, since they belong to
the teacher, which is not saved either (a student loaded with another teacher measures that one).
"""

import io
import pathlib
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.env_util import unwrap_wrapper
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill.common.files import atomic_path, resolve_save_path
from sb3_distill.common.policy_terms import as_list
from sb3_distill.common.renamed import rename_keywords, rename_value, rename_values
from sb3_distill.common.obs import NumpyObs
from sb3_distill.common.reference_env import ReferenceMeasurement, as_vec_env, shifted_student_env
from sb3_distill.common.teacher_observations import TeacherObservations, teacher_observation_space
from sb3_distill.common.workers import explaining_dead_workers
from sb3_distill.errors import IncompatibleTeacherError, TeacherError
from sb3_distill.teachers import Teacher, load_teacher
from sb3_distill.teachers.loading import TeacherSpec, check_teacher_spaces, same_space
from sb3_distill.teachers.teacher import reference_returns

SelfTeacherMixin = TypeVar("SelfTeacherMixin", bound="TeacherMixin")


def _monitor_steps(env: gym.Env) -> int:
    """Env steps a ``Monitor`` in ``env``'s wrappers has counted (0 without one)."""
    monitor = unwrap_wrapper(env, Monitor)
    return monitor.get_total_steps() if isinstance(monitor, Monitor) else 0


def _spec_name(spec: Any, teacher: Teacher) -> str | None:
    """What can name this teacher again after a save: the user's string spec, else where the teacher was loaded from."""
    if isinstance(spec, (str, pathlib.PurePath)):
        return str(spec)
    return teacher.source or None


class TeacherMixin:
    """
    Teacher handling for an SB3 algorithm; put it first in the bases: ``class DistillDQN(TeacherMixin, DQN)``.

    The algorithm calls :meth:`_setup_teachers` at the start of ``_setup_model`` (before buffers and networks are
    allocated, so a wrong teacher costs nothing) and :meth:`_require_teachers` at the start of ``train``.
    It may extend :meth:`_check_teacher` with what its loss needs. Its ``learn`` needs no override: the mixin's checks
    the teachers first and names the tensorboard run after the class.

    What the teachers see (:mod:`sb3_distill.common.teacher_observations`): the mixin follows the env's teacher
    observations through ``learn()`` (after SB3's ``_setup_learn`` resets the env, and in SB3's
    ``_update_info_buffer`` after each env step) and hands them to the algorithm's buffer
    (:mod:`sb3_distill.common.buffers`); :meth:`_teacher_current_observations` is what a teacher acts on.

    Attributes after set-up: ``teachers`` (a list of :class:`~sb3_distill.teachers.Teacher`), ``teacher`` (the
    teacher, or the list when there are several; before set-up, the spec(s) given to ``__init__``) and
    ``teacher_specs`` (strings, saved with the student).
    """

    #: Keywords renamed since a release, old name -> new name: the old name is still accepted by ``__init__``
    #: (decorated with :func:`~sb3_distill.common.renamed.accepts_renamed_keywords`) and ``load()``, with a
    #: ``FutureWarning``, and a model saved under the old name loads with its value.
    renamed_keywords: ClassVar[dict[str, str]] = {}
    #: Values renamed since a release, keyword -> {old value -> new value}, accepted the same way.
    renamed_values: ClassVar[dict[str, dict[str, str]]] = {}
    #: The spec(s) given to ``__init__`` until :meth:`_setup_teachers`, then the Teacher (or the list of them).
    teacher: Any
    teachers: list[Teacher]
    teacher_specs: list[str | None]
    _teacher_view: TeacherObservations | None = None
    #: Where the reference returns came from (given, the registered env, the student's own env) once they are known
    reference_measurement: ReferenceMeasurement | None = None
    # Provided by SB3's BaseAlgorithm.
    device: Any
    env: VecEnv | None
    _last_obs: Any
    observation_space: spaces.Space
    action_space: spaces.Space

    def _init_teacher(self, teacher: TeacherSpec | Sequence[TeacherSpec] | None, init_setup_model: bool) -> None:
        """
        Store the teacher spec(s) given to ``__init__``; resolved later by :meth:`_setup_teachers`.

        :param teacher: the spec(s) the user gave
        :param init_setup_model: SB3's ``_init_setup_model``; ``load()`` builds models without a teacher
        """
        name = type(self).__name__
        if not as_list(teacher) and init_setup_model:
            raise TeacherError(
                f"{name} needs a teacher: {name}('MlpPolicy', env, teacher='dqn/CartPole-v1') "
                "(a Teacher, a loaded model, a zip, an rl-zoo3 folder or a zoo id)."
            )
        self.teacher = teacher
        self.teachers = []
        self.teacher_specs = []
        self._measured_reference_returns: tuple[float, float] | None = None

    # ------------------------------------------------------------------ resolution
    def _setup_teachers(self) -> None:
        """Resolve and check the teacher spec(s); after ``load(path, env=env)`` without ``teacher=``, the saved ones."""
        self._restore_renamed_attributes()
        specs = as_list(self.teacher)
        names: list[Any] = specs
        if not specs and self.env is not None and any(getattr(self, "teacher_specs", None) or []):
            specs, names = self._reload_saved_specs(), list(self.teacher_specs)
        teachers: list[Teacher] = []
        for spec in specs:
            teachers.append(self._resolve_one(spec, teachers[0] if teachers else None))
        self._set_teachers(teachers, names)

    def _reload_saved_specs(self) -> list[Any]:
        """The saved specs, if every one still resolves; else a warning that names ``teacher=``, and no teacher."""
        saved = list(self.teacher_specs)
        name = type(self).__name__
        try:
            return [load_teacher(spec, device=self.device) if spec else self._unsaved_teacher() for spec in saved]
        except TeacherError as error:
            warnings.warn(
                f"{name}.load(): the teacher this student was trained with ({saved}) could not be loaded again ({error}). "
                f"The student can predict but not train: pass {name}.load(path, env=env, teacher=...) to continue training.",
                stacklevel=4,
            )
            return []

    def _restore_renamed_attributes(self) -> None:
        """A model saved before a rename holds the old attribute name or value: move it to the new one (warned)."""
        for old, new in self.renamed_keywords.items():
            if old in self.__dict__:
                setattr(self, new, self.__dict__.pop(old))
        for keyword, values in self.renamed_values.items():
            if keyword in self.__dict__:
                setattr(self, keyword, rename_value(type(self).__name__, keyword, self.__dict__[keyword], values, 5))

    @staticmethod
    def _unsaved_teacher() -> Teacher:
        raise TeacherError("it was given as a live model, which is not saved")

    def _resolve_one(self, spec: TeacherSpec, first: Teacher | None) -> Teacher:
        teacher = load_teacher(spec, device=self.device)
        if first is not None and not (
            same_space(teacher.observation_space, first.observation_space)
            and same_space(teacher.action_space, first.action_space)
        ):
            raise IncompatibleTeacherError(
                f"The teachers act on different spaces: {first!r} on {first.observation_space} -> {first.action_space}, "
                f"{teacher!r} on {teacher.observation_space} -> {teacher.action_space}. All teachers must be trained on "
                "the student's env."
            )
        self._check_teacher(teacher)
        return teacher

    def _check_teacher(self, teacher: Teacher) -> None:
        """
        Raise :class:`~sb3_distill.errors.IncompatibleTeacherError` unless ``teacher`` can teach this student.

        Checks the spaces (discrete/continuous, shapes); algorithms extend it with what their loss needs.

        :param teacher: a loaded teacher
        """
        student_discrete = isinstance(self.action_space, spaces.Discrete)
        if teacher.is_discrete != student_discrete:
            kinds = ("discrete", "continuous") if teacher.is_discrete else ("continuous", "discrete")
            raise IncompatibleTeacherError(
                f"A {kinds[0]} teacher cannot teach a {kinds[1]} student: {teacher!r} acts in {teacher.action_space}, "
                f"the student's env in {self.action_space}. Pick a teacher trained on this env."
            )
        if self.observation_space is not None and self.action_space is not None:
            # The env's teacher_observation_space when it supplies teacher observations, else the student's
            observation_space = teacher_observation_space(getattr(self, "env", None), self.observation_space)
            check_teacher_spaces(teacher, observation_space, self.action_space)

    def _set_teachers(self, teachers: list[Teacher], specs: Sequence[Any]) -> None:
        self.teachers = teachers
        self._measured_reference_returns = None  # they were the previous teachers'
        self.teacher = teachers[0] if len(teachers) == 1 else (teachers or None)
        if teachers:
            # Saved with the student, so that load(path, env=env) can find them again.
            self.teacher_specs = [_spec_name(spec, teacher) for spec, teacher in zip(specs, teachers, strict=True)]

    def _require_teachers(self) -> list[Teacher]:
        """
        :return: the teachers; raises a :class:`~sb3_distill.errors.TeacherError` naming ``teacher=`` if there are none
        """
        if not self.teachers:
            name = type(self).__name__
            specs = [spec for spec in getattr(self, "teacher_specs", None) or [] if spec]
            hint = f" (it was trained with teacher={specs if len(specs) > 1 else specs[0]!r})" if specs else ""
            raise TeacherError(
                f"This {name} has no teacher, so it can predict but not train. Load it with "
                f"{name}.load(path, env=env, teacher=...){hint}."
            )
        return self.teachers

    # ------------------------------------------------------------------ what the teachers see
    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        last_obs = getattr(self, "_last_obs", None)
        result = super()._setup_learn(*args, **kwargs)  # type: ignore[misc]
        view = self._teacher_view
        if view is None or view.env is not self.env:
            assert self.env is not None
            view = self._teacher_view = TeacherObservations(self.env)
            view.reset(self._last_obs)
        elif self._last_obs is not last_obs:  # SB3 reset the env
            view.reset(self._last_obs)
        for name in ("replay_buffer", "rollout_buffer"):
            buffer = getattr(self, name, None)
            if hasattr(buffer, "attach_teacher_observations"):
                buffer.attach_teacher_observations(view)  # type: ignore[union-attr]
        return result

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: Any = None) -> None:
        # SB3's hook right after each env step of collect_rollouts, before the transition is stored.
        super()._update_info_buffer(infos, dones)  # type: ignore[misc]
        if self._teacher_view is not None and dones is not None:
            self._teacher_view.step(dones, infos)

    def _teacher_current_observations(self) -> NumpyObs:
        """What the teachers see of the student's last observation (``_last_obs``): what a teacher acts on."""
        view = self._teacher_view
        if view is not None and view.current is not None:
            return view.current
        return self._last_obs

    # ------------------------------------------------------------------ reference returns
    def _env_id(self) -> str | None:
        """The id of the student's env (else the teachers'), where reference returns are measured."""
        if self.env is not None:
            spec = self.env.get_attr("spec")[0]
            if spec is not None:
                return spec.id
        return next((teacher.env_id for teacher in self.teachers if teacher.env_id), None)

    def teacher_reference_returns(self) -> tuple[float, float]:
        """
        ``(G_random, G_T)``, against which QDagger's rule and DistillDQN's ``recipe="auto"`` judge returns.

        :return: ``reference_returns`` if given; else measured once per teacher set, 10 episodes each, not counted as
            training steps (G_T: the best of the teachers), kept until the teachers change and not saved. Measured in
            the student's own env when it behaves differently from its registered env id (a dynamics shift, make
            keywords such as LunarLander's wind, an action-noise wrapper:
            :func:`~sb3_distill.common.reference_env.shifted_student_env`; on a copy, so that the student's env is
            not touched), else on the registered env id
            (:meth:`Teacher.reference_returns <sb3_distill.teachers.Teacher.reference_returns>`, cached per process).
            Where: :attr:`reference_measurement`.
        """
        given = getattr(self, "reference_returns", None)
        if given is not None:
            if self.reference_measurement is None or self.reference_measurement.where != "given":
                self.reference_measurement = ReferenceMeasurement("given", "given as reference_returns=")
            return float(given[0]), float(given[1])
        if getattr(self, "_measured_reference_returns", None) is None:
            teachers = self._require_teachers()
            shifted = shifted_student_env(self.env, teachers[0].observation_space)
            if shifted is None:
                env_id = self._env_id()
                measured = [teacher.reference_returns(env_id) for teacher in teachers]
                self.reference_measurement = ReferenceMeasurement(
                    "registered", f"measured on {env_id or 'the teacher env'} as registered"
                )
            else:
                steps_before = _monitor_steps(shifted)
                vec_env = as_vec_env(shifted)
                measured = []
                for teacher in teachers:
                    random_returns, teacher_returns = reference_returns(teacher, vec_env)
                    measured.append((float(np.mean(random_returns)), float(np.mean(teacher_returns))))
                env_steps = _monitor_steps(shifted) - steps_before
                vec_env.close()
                self.reference_measurement = ReferenceMeasurement(
                    "student_env",
                    f"measured in the student's own env (it behaves differently from {self._env_id()} as registered; "
                    f"a random policy plays {measured[0][0]:.1f} there; {env_steps} env steps on a copy of it)",
                    env_steps,
                )
            self._measured_reference_returns = (measured[0][0], max(teacher_return for _, teacher_return in measured))
        return self._measured_reference_returns  # type: ignore[return-value]

    def _env_reward_threshold(self) -> float | None:
        """The return at which gymnasium counts the student's env solved (``spec.reward_threshold``); ``None`` if none."""
        env_id = self._env_id()
        if env_id is None:
            return None
        try:
            return gym.spec(env_id).reward_threshold
        except gym.error.Error:  # an env that is not registered has no threshold
            return None

    # ------------------------------------------------------------------ a new env
    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """
        SB3's ``set_env`` (same arguments). Another env than the current one also gets its own reference returns:
        those measured for the previous env are forgotten (measured again at the next ``learn()``, on a copy of the
        new env if it behaves differently from its registered id) and the ``"auto"`` choices made from them are made
        again there (DistillDQN's ``recipe``; DistillPPO's ``distill_coef`` is chosen at every ``learn()``). So a
        student distilled in a simulator and then ``set_env(real_env)`` judges its teacher in the real env.
        ``reference_returns`` given by the user are kept. The replay buffer, as in SB3, keeps the previous env's
        transitions.

        :param env: the env to learn on from now on
        :param force_reset: reset the env before training (SB3's meaning)
        """
        previous = getattr(self, "env", None)
        super().set_env(env, force_reset=force_reset)  # type: ignore[misc]
        if self.env is not previous:
            self._measured_reference_returns = None
            self.reference_measurement = None
            self._forget_env_choices()

    def _forget_env_choices(self) -> None:
        """Undo what was chosen from the previous env's reference returns; algorithms with such choices extend it."""

    # ------------------------------------------------------------------ learn
    def learn(
        self: SelfTeacherMixin,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = None,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfTeacherMixin:
        """
        The parent algorithm's ``learn``, once the teachers are known (else an error naming ``teacher=``); a dead
        ``SubprocVecEnv`` worker raises an error naming it instead of hanging.

        :param total_timesteps: env steps to take
        :param callback: SB3 callback(s)
        :param log_interval: as in the parent algorithm (``None``: its default, e.g. every 4 episodes for DQN, every
            rollout for PPO)
        :param tb_log_name: name of the tensorboard run (default: the algorithm's class name)
        :param reset_num_timesteps: whether to restart the step counter (``False`` continues a run)
        :param progress_bar: show a progress bar
        :return: the trained model
        """
        self._require_teachers()
        interval = {} if log_interval is None else {"log_interval": log_interval}
        with explaining_dead_workers(self.env):
            return super().learn(  # type: ignore[misc]
                total_timesteps,
                callback=callback,
                tb_log_name=tb_log_name or type(self).__name__,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=progress_bar,
                **interval,
            )

    # ------------------------------------------------------------------ save / load
    @classmethod
    def load(
        cls: type[SelfTeacherMixin],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: Any = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfTeacherMixin:
        """
        SB3's ``load`` (same arguments); it also takes the old names of :attr:`renamed_keywords`, with a warning.

        :param path: the saved model (a zip, or a file object)
        :param env: the env to continue training on (needed to re-resolve the saved teacher)
        :param device: torch device
        :param custom_objects: objects that replace saved ones (SB3's meaning)
        :param print_system_info: print the saving and the current system's versions
        :param force_reset: reset the env before training
        :param kwargs: attributes to change, e.g. ``teacher=`` (another teacher than the saved one)
        :return: the loaded model
        """
        kwargs = rename_keywords(cls.__name__, cls.renamed_keywords, kwargs)
        kwargs = rename_values(cls.__name__, cls.renamed_values, kwargs)
        for old, new in cls.renamed_keywords.items():
            if new in kwargs:
                # A zip saved before the rename holds the old attribute, moved to the new name by _setup_model: the
                # value given here must win over it, as SB3's load(**kwargs) wins over the zip.
                kwargs[old] = kwargs[new]
        return super().load(  # type: ignore[misc]
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

    def _excluded_save_params(self) -> list[str]:
        excluded = ["teacher", "teachers", "_measured_reference_returns", "_teacher_view", "reference_measurement"]
        return [*super()._excluded_save_params(), *excluded]  # type: ignore[misc]

    def save(
        self, path: str | pathlib.Path | Any, exclude: Iterable[str] | None = None, include: Iterable[str] | None = None
    ) -> None:
        """
        Save the student (never the teachers), atomically: a crash or a full disk during the save leaves the previous
        file intact. Refuses to write over a teacher's own model file.

        :param path: where to save (``.zip`` is added if there is no suffix), or a file object
        :param exclude: extra attributes not to save
        :param include: attributes to save that would otherwise be excluded
        """
        if not isinstance(path, (str, pathlib.PurePath)):
            super().save(path, exclude=exclude, include=include)  # type: ignore[misc]
            return
        target = resolve_save_path(path, "zip")
        for teacher in getattr(self, "teachers", None) or []:
            if teacher.source_path is not None and target.resolve() == teacher.source_path:
                raise TeacherError(f"Refusing to save the student over its teacher's file {target}: choose another path.")
        with atomic_path(target) as temporary:
            super().save(temporary, exclude=exclude, include=include)  # type: ignore[misc]

    def save_replay_buffer(self, path: str | pathlib.Path | Any) -> None:
        """
        Save the replay buffer as a pickle, atomically (the previous file survives a crash or a full disk).

        :param path: where to save (``.pkl`` is added if there is no suffix), or a file object
        """
        if not isinstance(path, (str, pathlib.PurePath)):
            super().save_replay_buffer(path)  # type: ignore[misc]
            return
        with atomic_path(resolve_save_path(path, "pkl")) as temporary:
            super().save_replay_buffer(temporary)  # type: ignore[misc]


__all__ = ["TeacherMixin"]
