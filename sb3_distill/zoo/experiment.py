"""
:class:`DistillExperimentManager`: rl-zoo3's ``ExperimentManager`` with what distillation and distributed tuning add.

It overrides the smallest methods it can; each says what it adds to rl-zoo3's.
"""

import os
import sys
import time
import warnings
from collections import OrderedDict
from typing import Any

import optuna
from optuna.storages import BaseStorage
from rl_zoo3.exp_manager import ExperimentManager

from sb3_distill.errors import TeacherError, TeacherNotFoundError
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import ZOO_ENV_VAR
from sb3_distill.zoo import tuning
from sb3_distill.zoo.config import (
    ConfigError,
    check_hyperparams_file,
    check_hyperparams_keys,
    check_wrappers_importable,
    convert_teacher_share,
    teacher_env_settings,
)
from sb3_distill.zoo.registry import ALGO_NAMES, packaged_hyperparams
from sb3_distill.zoo.samplers import tuning_with
from sb3_distill.zoo.storage import has_heartbeat, open_storage
from sb3_distill.zoo.teacher_cache import cached_teacher, teacher_specs


class TrialError(RuntimeError):
    """An error inside a trial's ``learn()``: the study stops instead of pruning the trial."""


class DistillExperimentManager(ExperimentManager):
    """
    rl-zoo3's ``ExperimentManager`` (same arguments; see ``rl_zoo3/train.py``), with our defaults and checks.

    * without ``config``, our packaged ``hyperparams/{algo}.yml`` when we ship one;
    * bad input fails before any file is written: a YAML without the env, an unknown hyperparameter, a wrapper that
      cannot be imported, a teacher spec that does not resolve, a storage that cannot be reached;
    * the student trains on its teacher's ``env_wrapper`` / ``vec_env_wrapper`` / ``frame_stack`` when its entry
      sets none, and a difference is an error (:func:`~sb3_distill.zoo.config.teacher_env_settings`);
    * teachers are loaded once per process and shared by every Optuna trial;
    * an error inside ``learn()`` fails the study (rl-zoo3 turns ``ValueError``/``AssertionError`` into pruned
      trials); ``--trial-id 0`` works (rl-zoo3 skips 0);
    * tuning runs on :func:`~sb3_distill.zoo.storage.open_storage` and recovers dead workers' trials
      (:mod:`sb3_distill.zoo.tuning`).
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

    @property
    def _sources(self) -> str:
        return self.config + (" or -params" if self.custom_hyperparams else "")

    # ------------------------------------------------------------------ hyperparameters
    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """rl-zoo3's, after checking the file, then with the teacher's env settings (saved in ``config.yml``)."""
        check_hyperparams_file(self.config, self.env_name.gym_id, self.algo, self._is_atari)
        if self.trial_id == 0:
            # rl-zoo3 tests `if self.trial_id:` and so would ignore trial 0; its order is kept: trial, then -params.
            trial_params = self.load_trial(self.storage, self.study_name, 0)  # type: ignore[arg-type]
            self.custom_hyperparams = {**trial_params, **(self.custom_hyperparams or {})}
        hyperparams, saved_hyperparams = super().read_hyperparameters()
        origins: dict[str, str] = {}
        if "teacher" in hyperparams:
            self._teachers = self._load_teachers(hyperparams["teacher"])
            from_teacher = teacher_env_settings(self._teachers, hyperparams, self._sources)
            for key, value in from_teacher.items():
                print(f"Using the teacher's {key}: {value!r}")
                origins[key] = "from the teacher's config.yml"
            hyperparams.update(from_teacher)
            saved_hyperparams = OrderedDict(sorted({**saved_hyperparams, **from_teacher}.items()))
        elif self.algo in ALGO_NAMES and not self.continue_training:
            raise ConfigError(
                f"--algo {self.algo} needs a teacher: add 'teacher: dqn/{self.env_name.gym_id}' (or any spec of "
                f"load_teacher) to {self.config}'s {self.env_name.gym_id} entry, or pass -params teacher:SPEC."
            )
        check_wrappers_importable(hyperparams, origins)
        return hyperparams, saved_hyperparams

    def _load_teachers(self, specs: Any) -> list[Teacher]:
        """Resolve the teacher spec(s) now, once: a wrong one fails before any file is written."""
        try:
            return [cached_teacher(spec, self.device) for spec in teacher_specs(specs)]
        except TeacherNotFoundError as error:
            # The command line has no zoo_dirs=: the folders come from the environment or the working directory.
            raise TeacherNotFoundError(
                f"The teacher of --algo {self.algo} --env {self.env_name.gym_id} ({specs!r}): {error}\nA zoo id is "
                f"looked up in the folders of ${ZOO_ENV_VAR}: set {ZOO_ENV_VAR}=/path/to/rl-trained-agents (the folder "
                "holding ALGO/ENV_N run folders), run from the folder that has logs/ or rl-trained-agents/, or give "
                "the teacher's run folder or zip with -params teacher:PATH."
            ) from error
        except TeacherError as error:
            raise TeacherError(
                f"The teacher of --algo {self.algo} --env {self.env_name.gym_id} ({specs!r}): {error}"
            ) from error

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict[str, Any]:
        """rl-zoo3's, on our storage, with an error naming what the storage has instead of an ``IndexError``."""
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
        """
        rl-zoo3's, then ``data_policy: lin_X`` as a schedule (rl-zoo3 converts ``lin_X`` for its own keys only) and the
        check of every key left for the algorithm; tuning connects to its storage here.
        """
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        from rl_zoo3.utils import ALGOS

        convert_teacher_share(hyperparams, self._sources)
        check_hyperparams_keys(self.algo, ALGOS[self.algo], hyperparams, self._sources)
        if self.optimize_hyperparameters:
            if self._teachers:
                # Trials get the loaded teachers; a training run keeps the spec, which the student's zip records.
                loaded = self._teachers if isinstance(hyperparams["teacher"], (list, tuple)) else self._teachers[0]
                hyperparams["teacher"] = loaded
            # Connect now, the rest being checked: an unreachable database fails in seconds, before anything is written.
            self._optuna_storage()
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper

    # ------------------------------------------------------------------ tuning
    def objective(self, trial: optuna.Trial) -> float:
        """rl-zoo3's, recording this worker in the trial, and failing the study on an error inside ``learn()``."""
        tuning.record_worker(trial)
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
        rl-zoo3's method (same sampler, pruner, objective, ``--n-trials`` / ``--max-total-trials``, study attributes
        and report), forked because it is one block. What differs, and why:

        * the storage is :func:`~sb3_distill.zoo.storage.open_storage`'s (database heartbeats and retries, checked
          connection, the installed PostgreSQL driver) where rl-zoo3 passes the bare URL to Optuna;
        * the single ``study.optimize`` call is :func:`~sb3_distill.zoo.tuning.optimize`, which recovers the trials
          of dead workers and waits for their retries, so that a killed worker loses no trial;
        * the samplers see the study's teachers (:func:`~sb3_distill.zoo.samplers.tuning_with`);
        * the report (:func:`~sb3_distill.zoo.tuning.write_report`) also works when no trial completed.
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
        with tuning_with(self._teachers):
            try:
                heartbeat = has_heartbeat(self._optuna_storage())
                tuning.optimize(study, self.objective, heartbeat, self.n_trials, self.max_total_trials, self.n_jobs)
            except KeyboardInterrupt:
                pass
        report_name = (
            f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}_{int(time.time())}"
        )
        tuning.write_report(
            study, os.path.join(self.log_folder, self.algo, report_name), not self.no_optim_plots, self.verbose
        )
