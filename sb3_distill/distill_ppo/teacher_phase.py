"""
DistillPPO's teacher phase: the teacher plays the first rollout(s), then the student is trained on them by the teacher
term alone, before PPO's own updates (``teacher_rollout_steps``, ``pretrain_gradient_steps``; DistillDQN's keywords
for its teacher phase, with the same meaning).

Why (issue 20, measured in docs/guide/distill_ppo.md "Which default"): from a strong teacher, with SB3's PPO defaults,
a student pulled towards the teacher from its first update (λ_0 = 1) copies the teacher on the states of its own
near-random first rollouts, which the teacher never visits: it was 120-240 below PPO from scratch on the mean up to
10k env steps (CartPole-v1, 5 seeds). Cloned on the states of a rollout the teacher plays, the student starts at the
teacher's level (500 from the first update on 5 of 5 seeds).

The teacher acts through the one hook SB3's ``collect_rollouts`` has for actions (``self.policy(obs)``): for a teacher
rollout the policy's ``forward`` is replaced, for that rollout only, by one that returns the teacher's greedy action,
the student's value of the state and the student's log-probability of that action (what PPO stores). PPO's clipped
surrogate is an importance-weighted estimate for actions the student drew; the teacher's are not, so ``train()`` drops
the surrogate on a teacher rollout (and PPO's ``target_kl`` stop, which measures the same ratio), and keeps the value
loss and the teacher term.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_distill.common.distill_coef import AUTO, SCORE_EPISODES

#: Passes of the teacher term alone over the teacher's rollout that ``pretrain_gradient_steps="auto"`` takes (in
#: gradient steps of ``batch_size``). Measured (CartPole-v1, SB3's PPO defaults, the bundled strong teacher, seed 0):
#: PPO's own 10 passes leave the student agreeing with its teacher on 79% of the rollout's states and playing 98 after
#: the first update; 20 passes: 451 / 291 (seeds 0 / 1), at 500 from the fifth update; 50 passes: 500 from the first
#: update on 5 of 5 seeds (docs/guide/distill_ppo.md "Which default").
AUTO_PRETRAIN_EPOCHS = 50

TeacherPhaseSetting = int | str


def check_teacher_phase_setting(name: str, value: TeacherPhaseSetting) -> None:
    """
    :param name: ``"teacher_rollout_steps"`` or ``"pretrain_gradient_steps"``
    :param value: an int >= 0 or ``"auto"``; raises ``TypeError`` / ``ValueError`` naming the accepted values
    """
    if isinstance(value, str):
        if value != AUTO:
            raise ValueError(f"Unknown {name}={value!r}: use an int >= 0 (0: off) or 'auto' (chosen from the teacher).")
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} is not an int: use an int >= 0 (0: off) or 'auto' (chosen from the teacher).")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (got {value}); 0 turns it off, 'auto' chooses from the teacher.")


class TeacherPhaseMixin:
    """
    The teacher phase of an on-policy student (DistillPPO). The algorithm sets ``teacher_rollout_steps`` and
    ``pretrain_gradient_steps`` (checked by :func:`check_teacher_phase_setting`), calls :meth:`_choose_teacher_phase`
    at each ``learn()`` and, in ``train()``, :meth:`_pretrain_on_teacher_rollout` first and drops PPO's surrogate where
    ``_rollout_played_by_teacher``.
    """

    teacher_rollout_steps: TeacherPhaseSetting
    pretrain_gradient_steps: TeacherPhaseSetting
    #: env steps the teacher has played so far (saved: a resumed run does not play them again)
    teacher_steps_played: int = 0
    #: whether the pre-training after the teacher phase is done (saved)
    pretrained: bool = False
    #: the settings in use for this ``learn()`` ("auto" resolved; not saved: chosen again at each ``learn()``)
    _teacher_phase_steps: int = 0
    _pretrain_steps: int = 0
    #: whether the rollout in the buffer was played by the teacher (not saved: the buffer is not either)
    _rollout_played_by_teacher: bool = False
    #: per env: whether its current episode has a teacher's action (not saved)
    _teacher_in_episode: np.ndarray | None = None
    #: returns of the student's own latest episodes since the teacher phase, latest last (saved)
    _student_episode_returns: list[float] | None = None
    # Provided by SB3 and the other mixins.
    n_steps: int
    n_envs: int
    batch_size: int
    distill_coef: Any
    distill_value_coef: float
    action_space: spaces.Space
    policy: Any
    rollout_buffer: RolloutBuffer
    teachers: list[Any]
    _n_updates: int
    num_timesteps: int
    _auto_waits_for_a_stall: bool
    _terms: list[Any]

    # ------------------------------------------------------------------ the choice
    def _choose_teacher_phase(self) -> str | None:
        """
        Resolve ``"auto"``: a teacher that ``distill_coef="auto"`` judges strong (its return reaches the env's reward
        threshold, or the env has none) plays one rollout (``n_steps`` × ``n_envs`` env steps) on a discrete action
        space, then :data:`AUTO_PRETRAIN_EPOCHS` passes of the teacher term over it; else no teacher phase.

        :return: a sentence for ``distill_coef_choice`` when ``"auto"`` chose a teacher phase, else ``None``
        """
        rollout = self.n_steps * self.n_envs
        strong = bool(self.teachers) and self.distill_coef == AUTO and not self._auto_waits_for_a_stall
        auto_steps = rollout if strong and isinstance(self.action_space, spaces.Discrete) else 0
        steps = auto_steps if self.teacher_rollout_steps == AUTO else int(self.teacher_rollout_steps)
        self._teacher_phase_steps = math.ceil(steps / rollout) * rollout  # whole rollouts
        auto_pretrain = AUTO_PRETRAIN_EPOCHS * math.ceil(rollout / self.batch_size) if self._teacher_phase_steps else 0
        explicit_pretrain = self.pretrain_gradient_steps != AUTO
        self._pretrain_steps = int(self.pretrain_gradient_steps) if explicit_pretrain else auto_pretrain
        if self.teacher_rollout_steps != AUTO or not self._teacher_phase_steps:
            return None
        return (
            f"; and the teacher plays the first {self._teacher_phase_steps} env steps (one rollout, counted in "
            f"num_timesteps) before the student acts, the student trained on them by the teacher term alone for "
            f"{self._pretrain_steps} gradient steps (pass teacher_rollout_steps=0 to turn this off)"
        )

    def _teacher_acts_in_next_rollout(self) -> bool:
        # Only a model that has not started learning begins a teacher phase (a model saved before the phase existed
        # does not play one when it resumes); a begun phase goes on over save / load.
        begun = self.teacher_steps_played > 0 or self._n_updates == 0
        return bool(self.teachers) and begun and self.teacher_steps_played < self._teacher_phase_steps

    # ------------------------------------------------------------------ the teacher acts
    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """
        SB3's ``collect_rollouts``; in the teacher phase with the teacher's actions.

        :return: SB3's: whether the rollout was completed
        """
        self._rollout_played_by_teacher = self._teacher_acts_in_next_rollout()
        if not self._rollout_played_by_teacher:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)  # type: ignore[misc]
        student_forward, steps_before = self.policy.forward, self.num_timesteps
        self.policy.forward = self._teacher_forward  # the hook: SB3's collect_rollouts asks self.policy(obs)
        try:
            completed = super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)  # type: ignore[misc]
        finally:
            del self.policy.forward
        assert self.policy.forward == student_forward
        self.teacher_steps_played += self.num_timesteps - steps_before  # fewer if a callback stopped the rollout
        return completed

    def _acting_teacher(self) -> Any:
        """The teacher that acts: the one with the largest weight (the first of them)."""
        weights = [term.weight for term in self._terms] if self._terms else [1.0]
        return self.teachers[int(np.argmax(weights))]

    def _teacher_forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """What ``policy.forward`` returns, for the teacher's greedy action: the student's value and log-probability."""
        actions, _ = self._acting_teacher().predict(self._teacher_current_observations(), deterministic=True)
        actions = np.asarray(actions)
        if isinstance(self.action_space, spaces.Box):
            if self.policy.squash_output:
                actions = self.policy.scale_action(actions)  # the student's actions live in [-1, 1]
            actions = actions.astype(np.float32)
        actions_tensor = th.as_tensor(actions, device=self.policy.device).reshape((-1, *(self.action_space.shape or ())))
        values, log_prob, _ = self.policy.evaluate_actions(obs, actions_tensor)
        in_episode = self._teacher_in_episode
        if in_episode is None or len(in_episode) != len(actions):
            in_episode = self._teacher_in_episode = np.zeros(len(actions), dtype=bool)
        in_episode[:] = True
        return actions_tensor, values, log_prob

    _teacher_current_observations: Callable[[], Any]

    # ------------------------------------------------------------------ the student's score
    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: Any = None) -> None:
        super()._update_info_buffer(infos, dones)  # type: ignore[misc]
        if self.teacher_steps_played == 0 and not self._rollout_played_by_teacher:
            return  # no teacher phase: the student's episodes are SB3's ep_info_buffer
        returns = self._student_episode_returns or []
        in_episode = self._teacher_in_episode
        for index, info in enumerate(infos):
            episode = info.get("episode")
            teachers = in_episode is not None and index < len(in_episode) and in_episode[index]
            if episode is not None and not teachers:
                returns = [*returns, float(episode["r"])][-SCORE_EPISODES:]
            if dones is not None and dones[index] and in_episode is not None and index < len(in_episode):
                in_episode[index] = False
        self._student_episode_returns = returns

    def _student_returns(self) -> list[float]:
        """The student's own latest episodes: after a teacher phase, none that the teacher played a step of."""
        if self.teacher_steps_played == 0:
            return super()._student_returns()  # type: ignore[misc]
        return list(self._student_episode_returns or [])[-SCORE_EPISODES:]

    # ------------------------------------------------------------------ pre-training
    def _pretrain_on_teacher_rollout(self, distill_term: Callable[..., tuple[th.Tensor, list[float], Any]]) -> None:
        """
        Once, after the teacher phase's last rollout: ``pretrain_gradient_steps`` gradient steps (minibatches of
        ``batch_size``) of the teacher term alone on it.

        :param distill_term: the algorithm's teacher term, ``(rollout_data, student_values, rollout_targets) -> (loss,
            agreements, targets)``
        """
        if self.pretrained or not self._rollout_played_by_teacher or self.teacher_steps_played < self._teacher_phase_steps:
            return
        self.pretrained = True
        if self._pretrain_steps == 0:
            return
        rollout_targets = self._rollout_teacher_targets()  # type: ignore[attr-defined]
        self.policy.set_training_mode(True)
        steps, losses, agreements = 0, [], []
        value_term = self.distill_value_coef > 0  # the critic's values enter the teacher term only through its value part
        while steps < self._pretrain_steps:
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                values = self.policy.predict_values(rollout_data.observations).flatten() if value_term else None
                loss, batch_agreements, _ = distill_term(rollout_data, values, rollout_targets)
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)  # type: ignore[attr-defined]
                self.policy.optimizer.step()
                losses.append(loss.item())
                agreements.extend(batch_agreements)
                steps += 1
                if steps == self._pretrain_steps:
                    break
        self.logger.record("train/pretrain_distill_loss", float(np.mean(losses)))  # type: ignore[attr-defined]
        if agreements:
            self.logger.record("train/pretrain_teacher_agreement", float(np.mean(agreements)))  # type: ignore[attr-defined]


__all__ = ["AUTO_PRETRAIN_EPOCHS", "TeacherPhaseMixin", "check_teacher_phase_setting"]
