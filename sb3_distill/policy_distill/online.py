"""Online distillation: a student trained alongside a teacher that is itself still learning."""

from typing import TYPE_CHECKING

from stable_baselines3.common.callbacks import BaseCallback

from sb3_distill.common.datasets import TransitionRecorder
from sb3_distill.common.teacher_observations import TEACHER_OBSERVATION_KEY, env_teacher_observation_space
from sb3_distill.errors import IncompatibleTeacherError

if TYPE_CHECKING:
    from sb3_distill.policy_distill.policy_distill import PolicyDistill


class OnlineDistillCallback(BaseCallback):
    """
    Distill a student from a teacher that is still learning: pass this callback to the *teacher's* ``learn()``.

    Every transition the teacher plays goes into the student's replay buffer (raw observations); every ``train_freq``
    teacher env steps, the student's teacher is refreshed with a frozen snapshot of the teacher as it is now, and the
    student takes ``gradient_steps`` gradient steps (the teacher outputs the student caches per transition are then
    recomputed for the whole buffer, for the new snapshot). The student's ``num_timesteps`` counts the teacher's env
    steps.

    .. code-block:: python

        teacher = PPO("MlpPolicy", "CartPole-v1")
        student = PolicyDistill("MlpPolicy", "CartPole-v1", teacher=teacher)
        teacher.learn(100_000, callback=OnlineDistillCallback(student, train_freq=1_000))

    :param student: the :class:`PolicyDistill` to train; its teacher number ``teacher_index`` is replaced by the
        learning model (the others, if any, stay as they are)
    :param train_freq: teacher env steps (summed over its envs) between two student updates
    :param gradient_steps: student gradient steps per update; ``-1``: as many as env steps since the last update
    :param teacher_index: which of the student's teachers is the learning model
    :param verbose: verbosity level
    """

    def __init__(
        self,
        student: "PolicyDistill",
        train_freq: int = 1_000,
        gradient_steps: int = -1,
        teacher_index: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if train_freq < 1:
            raise ValueError(f"train_freq must be >= 1 env step (got {train_freq}).")
        if gradient_steps < -1 or gradient_steps == 0:
            raise ValueError(f"gradient_steps must be >= 1, or -1 for one per env step (got {gradient_steps}).")
        self.student = student
        self.train_freq = train_freq
        self.gradient_steps = gradient_steps
        self.teacher_index = teacher_index
        self._recorder: TransitionRecorder | None = None
        self._last_update = 0

    def _init_callback(self) -> None:
        if self.model is self.student:
            raise IncompatibleTeacherError(
                "OnlineDistillCallback goes on the teacher's learn(), not on the student's: teacher.learn(n, callback=...)."
            )
        for env in (self.training_env, self.student.env):
            if env_teacher_observation_space(env) is not None:
                raise IncompatibleTeacherError(
                    f"The env supplies teacher observations ({TEACHER_OBSERVATION_KEY!r}), which online distillation "
                    "does not record: the learning model and its student see the same observations here. Use an env "
                    "without them, or distill from the trained model with PolicyDistill.learn()."
                )
        # Validates the model as a teacher of the student (spaces, losses) before any step is taken.
        self.student.set_teacher(self.model, self.teacher_index)
        assert self.student.replay_buffer is not None
        self._recorder = TransitionRecorder(self.student.replay_buffer, self.training_env)

    def _on_training_start(self) -> None:
        self.student.setup_learn_without_env(self.model._total_timesteps, tb_log_name="PolicyDistill_online")
        assert self._recorder is not None
        self._recorder.start(self.model._last_obs)  # type: ignore[arg-type]
        self._last_update = self.student.num_timesteps

    def _on_step(self) -> bool:
        assert self._recorder is not None
        # On-policy loops send `clipped_actions` to the env; off-policy loops send `actions`.
        actions = self.locals.get("clipped_actions", self.locals["actions"])
        self._recorder.add(actions, self.locals["new_obs"], self.locals["rewards"], self.locals["dones"], self.locals["infos"])
        student = self.student
        student.num_timesteps += self.training_env.num_envs
        student._current_progress_remaining = self.model._current_progress_remaining
        new_steps = student.num_timesteps - self._last_update
        if new_steps >= self.train_freq and student.num_timesteps > student.learning_starts:
            student.set_teacher(self.model, self.teacher_index)
            gradient_steps = new_steps if self.gradient_steps == -1 else self.gradient_steps
            student.train(gradient_steps=gradient_steps, batch_size=student.batch_size)
            student.logger.record("time/total_timesteps", student.num_timesteps, exclude="tensorboard")
            student.logger.dump(step=student.num_timesteps)
            self._last_update = student.num_timesteps
        return True
