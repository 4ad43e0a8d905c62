from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.dqn import DQN
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy, MlpPolicy, MultiInputPolicy

from sb3_distill.common.buffers import TeacherCacheMixin, TeacherNStepReplayBuffer, TeacherReplayBuffer
from sb3_distill.common.sampling import Samples, StudentTeacherBatch, concat_obs, sample_student_teacher
from sb3_distill.distill_dqn.recipes import DEFAULT_RECIPE, RECIPES, TD_TARGETS
from sb3_distill.common.teacher_mixin import TeacherMixin
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.losses import DISTILL_LOSSES, KL_DIRECTIONS, TD_LOSSES, agreement, distillation_loss, td_loss
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import TeacherSpec

SelfDistillDQN = TypeVar("SelfDistillDQN", bound="DistillDQN")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}: use one of {', '.join(repr(a) for a in allowed)}.")
    return value


class DistillDQN(TeacherMixin, DQN):
    """
    DQN whose student Q-network also learns from a teacher: L = TD + α_t · D.

    D (``distill_loss``): ``"kl"`` between p_X = softmax(Q_X(s) / T) (forward KL(p_T‖p_S) or, with
    ``kl_direction="student_teacher"``, KL(p_S‖p_T)), ``"mse"`` mean_a (Q_S − Q_T)², or ``"nll"`` cross-entropy of
    the teacher's greedy action; times T² when ``temperature_scaling``. TD (``td_target``): the plain DQN target
    (``"student"``), r + γ max_a' Q_T(s', a') (``"teacher"``), or none (``"none"``). Named recipes (``recipe=``:
    ``"seed"``, ``"qdagger"``, ``"policy_distillation"``) set all of these; explicit keywords override them.

    The teacher sees raw observations (with its own VecNormalize statistics) even when the student's env is
    VecNormalize-wrapped. It is never saved: ``save()`` writes the student only, ``load(path)`` predicts without a
    teacher and ``load(path, env=env, teacher=...)`` continues training.

    All of DQN's parameters (see ``stable_baselines3.DQN``) plus:

    :param teacher: a :class:`~sb3_distill.teachers.Teacher` or any spec ``load_teacher`` takes
        (``"dqn/CartPole-v1"``, a zip, an rl-zoo3 run folder, a loaded model, ``"hub:sb3/dqn-CartPole-v1"``)
    :param recipe: ``"seed"``, ``"qdagger"`` or ``"policy_distillation"`` (default: ``DEFAULT_RECIPE``)
    :param distill_loss: ``"kl"``, ``"mse"`` or ``"nll"``
    :param kl_direction: ``"teacher_student"`` (KL(p_T‖p_S)) or ``"student_teacher"`` (KL(p_S‖p_T))
    :param temperature: T > 0 of the softmax over Q-values / logits
    :param temperature_scaling: multiply D by T²
    :param td_target: ``"student"``, ``"teacher"`` or ``"none"``
    :param td_loss: ``"huber"`` or ``"mse"``
    :param distill_coef: α_t ≥ 0: a float, an SB3 schedule (a callable of the remaining progress, 1 → 0), or
        ``"qdagger"`` (α_t = max(1 − (Ĝ_S − G_random) / (G_teacher − G_random), 0), Ĝ_S over the student's last
        10 training episodes)
    :param teacher_rollout_steps: env steps played by the teacher (ε-greedy, ε = ``exploration_final_eps``) into
        the replay buffer before the student acts; they count in ``num_timesteps``
    :param pretrain_gradient_steps: extra gradient steps taken once, right after the teacher phase
    :param reference_returns: ``(G_random, G_teacher)`` for ``distill_coef="qdagger"``; measured once per teacher
        on a separate env (10 episodes each) when not given
    :param cache_teacher_outputs: store the teacher's outputs per transition in the replay buffer
        (:class:`~sb3_distill.common.buffers.TeacherReplayBuffer`), computed once in a batched pass over the new
        transitions at each update, instead of a teacher forward pass per sampled batch. Used when
        ``replay_buffer_class`` is not given, observations are not a dict and ``optimize_memory_usage=False``;
        faster per gradient step, same values (``scripts/benchmark.py`` measures it)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    teacher: Teacher | None

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        teacher: TeacherSpec | None = None,
        recipe: str | None = None,
        distill_loss: str | None = None,
        kl_direction: str | None = None,
        temperature: float | None = None,
        temperature_scaling: bool | None = None,
        td_target: str | None = None,
        td_loss: str | None = None,
        distill_coef: float | str | Callable[[float], float] | None = None,
        teacher_rollout_steps: int | None = None,
        pretrain_gradient_steps: int | None = None,
        reference_returns: tuple[float, float] | None = None,
        cache_teacher_outputs: bool = True,
    ) -> None:
        # Checked before anything is built, so bad input costs nothing.
        self.recipe = _choice("recipe", recipe or DEFAULT_RECIPE, tuple(RECIPES))
        explicit = dict(
            distill_loss=distill_loss,
            kl_direction=kl_direction,
            temperature=temperature,
            temperature_scaling=temperature_scaling,
            td_target=td_target,
            td_loss=td_loss,
            distill_coef=distill_coef,
            teacher_rollout_steps=teacher_rollout_steps,
            pretrain_gradient_steps=pretrain_gradient_steps,
        )
        settings = {**RECIPES[self.recipe], **{key: value for key, value in explicit.items() if value is not None}}
        self.distill_loss = _choice("distill_loss", settings["distill_loss"], DISTILL_LOSSES)
        self.kl_direction = _choice("kl_direction", settings["kl_direction"], KL_DIRECTIONS)
        self.td_target = _choice("td_target", settings["td_target"], TD_TARGETS)
        self.td_loss = _choice("td_loss", settings["td_loss"], TD_LOSSES)
        self.temperature = float(settings["temperature"])
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}); small T sharpens p = softmax(Q / T).")
        self.temperature_scaling = bool(settings["temperature_scaling"])
        self.distill_coef = settings["distill_coef"]
        if isinstance(self.distill_coef, str):
            _choice("distill_coef", self.distill_coef, ("qdagger",))
        elif not callable(self.distill_coef) and not float(self.distill_coef) >= 0:
            raise ValueError(f"distill_coef must be >= 0, an SB3 schedule or 'qdagger' (got {distill_coef}).")
        self.teacher_rollout_steps = int(settings["teacher_rollout_steps"])
        self.pretrain_gradient_steps = int(settings["pretrain_gradient_steps"])
        if self.teacher_rollout_steps < 0 or self.pretrain_gradient_steps < 0:
            raise ValueError("teacher_rollout_steps and pretrain_gradient_steps must be >= 0.")
        self.reference_returns = reference_returns
        self.cache_teacher_outputs = cache_teacher_outputs
        self._init_teacher(teacher, _init_setup_model)
        self._pretrained = False
        self._teacher_phase_episodes: int | None = None

        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        # The teacher first: a wrong teacher must fail before buffers and networks are allocated.
        self._setup_teachers()
        if self._uses_teacher_cache():
            self.replay_buffer = self._teacher_cache_buffer()
            # SB3 then only names its default class (it builds no buffer when one exists): ours is named after.
            self.replay_buffer_class = None
        super()._setup_model()
        if isinstance(self.replay_buffer, TeacherCacheMixin):
            self.replay_buffer_class = type(self.replay_buffer)

    def _uses_teacher_cache(self) -> bool:
        ours = (None, TeacherReplayBuffer, TeacherNStepReplayBuffer)
        return (
            self.cache_teacher_outputs
            and self.replay_buffer is None
            and self.replay_buffer_class in ours
            and not isinstance(self.observation_space, spaces.Dict)
            and not self.optimize_memory_usage
        )

    def _teacher_cache_buffer(self) -> TeacherReplayBuffer | TeacherNStepReplayBuffer:
        kwargs = dict(self.replay_buffer_kwargs)
        if self.n_steps > 1:
            kwargs.update(n_steps=self.n_steps, gamma=self.gamma)
            buffer_class: type[TeacherReplayBuffer | TeacherNStepReplayBuffer] = TeacherNStepReplayBuffer
        else:
            buffer_class = TeacherReplayBuffer
        return buffer_class(
            self.buffer_size,
            self.observation_space,
            self.action_space,
            device=self.device,
            n_envs=self.n_envs,
            **kwargs,
        )

    def _check_teacher(self, teacher: Teacher) -> None:
        if not teacher.is_discrete:
            raise IncompatibleTeacherError(
                f"DistillDQN needs a teacher with discrete actions; {teacher!r} acts in {teacher.action_space}. "
                "Use PolicyDistill or DistillPPO for continuous-action teachers."
            )
        super()._check_teacher(teacher)
        needs_q = {"td_target='teacher'": self.td_target == "teacher", "distill_loss='mse'": self.distill_loss == "mse"}
        for what, needed in needs_q.items():
            if needed and not teacher.has_q_values:
                raise IncompatibleTeacherError(
                    f"{what} needs a teacher with Q-values (DQN, QR-DQN), but {teacher!r} is a policy-only teacher: "
                    "use td_target='student' or 'none' and distill_loss='kl' or 'nll'."
                )
        if self.td_target == "teacher" and self.env is not None:
            vec_normalize = self.get_vec_normalize_env()
            if vec_normalize is not None and vec_normalize.norm_reward:
                raise IncompatibleTeacherError(
                    "td_target='teacher' bootstraps from the teacher's Q-values (raw reward scale), which does not "
                    "match VecNormalize(norm_reward=True) rewards: use norm_reward=False or td_target='student'."
                )

    def _require_teacher(self) -> Teacher:
        return self._require_teachers()[0]

    def learn(
        self: SelfDistillDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "DistillDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfDistillDQN:
        self._require_teacher()
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # ------------------------------------------------------------------ teacher phase
    def _in_teacher_phase(self) -> bool:
        return self.num_timesteps < self.teacher_rollout_steps

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if not self._in_teacher_phase():
            return super()._sample_action(learning_starts, action_noise, n_envs)
        teacher = self._require_teacher()
        # The teacher must see raw observations, not the student's normalized ones.
        raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
        actions, _ = teacher.predict(raw_obs, deterministic=True)  # type: ignore[arg-type]
        explore = np.random.rand(n_envs) < self.exploration_final_eps
        actions = np.where(explore, [self.action_space.sample() for _ in range(n_envs)], actions)
        return actions, actions

    def _take_pretrain_steps(self) -> int:
        """Gradient steps owed for the offline phase, once, at the first update after the teacher phase."""
        if self._pretrained or self._in_teacher_phase() or self.teacher_rollout_steps == 0:
            return 0
        self._pretrained = True
        self._teacher_phase_episodes = self._episode_num
        return self.pretrain_gradient_steps

    # ------------------------------------------------------------------ the loss
    def current_distill_coef(self) -> float:
        """
        :return: α_t for the current progress (float, schedule, or the QDagger rule)
        """
        if self.distill_coef == "qdagger":
            return self._qdagger_coef()
        if callable(self.distill_coef):
            return float(self.distill_coef(self._current_progress_remaining))
        return float(self.distill_coef)

    def _qdagger_coef(self) -> float:
        teacher = self._require_teacher()
        student_episodes = self._episode_num - (self._teacher_phase_episodes or 0)
        if self._in_teacher_phase() or student_episodes <= 0:
            return 1.0
        if self.reference_returns is None:
            env_id = teacher.env_id
            if self.env is not None and self.env.get_attr("spec")[0] is not None:
                env_id = self.env.get_attr("spec")[0].id
            self.reference_returns = teacher.reference_returns(env_id)
        random_return, teacher_return = self.reference_returns
        recent = [info["r"] for info in list(self.ep_info_buffer or [])[-min(student_episodes, 10) :]]
        if not recent or teacher_return <= random_return:
            return 1.0
        student_score = (float(np.mean(recent)) - random_return) / (teacher_return - random_return)
        return max(1.0 - student_score, 0.0)

    def _teacher_outputs(self, batch: StudentTeacherBatch) -> tuple[th.Tensor, th.Tensor | None]:
        """Teacher logits on s and, for the teacher TD target, Q_T on s': cached in the buffer, else one forward pass."""
        teacher = self._require_teacher()
        cached_logits = getattr(batch.student, "teacher_logits", None)
        if self.td_target != "teacher":
            return (cached_logits if cached_logits is not None else teacher.action_logits(batch.teacher_obs)), None
        cached_next_q = getattr(batch.student, "teacher_next_q", None)
        if cached_logits is not None and cached_next_q is not None:
            return cached_logits, cached_next_q
        if cached_logits is not None:  # n-step buffers cache s only
            return cached_logits, teacher.q_values(batch.teacher_next_obs)
        both = teacher.q_values(concat_obs(batch.teacher_obs, batch.teacher_next_obs))
        batch_size = both.shape[0] // 2
        return both[:batch_size], both[batch_size:]

    def _td_term(self, data: Samples, q_values: th.Tensor, teacher_next_q: th.Tensor | None) -> th.Tensor:
        if self.td_target == "none":
            return q_values.new_zeros(())
        with th.no_grad():
            if teacher_next_q is None:
                teacher_next_q = self.q_net_target(data.next_observations)
            next_q_values = teacher_next_q.max(dim=1).values.reshape(-1, 1)
            # n-step buffers give the discount per sample (gamma ** n unless the episode ended earlier)
            discounts = data.discounts if data.discounts is not None else self.gamma
            target_q_values = data.rewards + (1 - data.dones) * discounts * next_q_values
        current_q_values = th.gather(q_values, dim=1, index=data.actions.long())
        return td_loss(current_q_values, target_q_values, self.td_loss)  # type: ignore[arg-type]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        teacher = self._require_teacher()
        if isinstance(self.replay_buffer, TeacherCacheMixin):
            self.replay_buffer.update_teacher_outputs(teacher, next_q=self.td_target == "teacher")
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        gradient_steps += self._take_pretrain_steps()
        coef = self.current_distill_coef()

        td_losses, distill_losses, losses, agreements = [], [], [], []
        for _ in range(gradient_steps):
            batch = sample_student_teacher(self.replay_buffer, batch_size, self._vec_normalize_env)  # type: ignore[arg-type]
            teacher_logits, teacher_next_q = self._teacher_outputs(batch)

            q_values = self.q_net(batch.student.observations)
            distill = distillation_loss(
                self.distill_loss,  # type: ignore[arg-type]
                q_values,
                teacher_logits,
                temperature=self.temperature,
                direction=self.kl_direction,  # type: ignore[arg-type]
                temperature_scaling=self.temperature_scaling,
            )
            td = self._td_term(batch.student, q_values, teacher_next_q)
            loss = td + coef * distill

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

            td_losses.append(td.item())
            distill_losses.append(distill.item())
            losses.append(loss.item())
            agreements.append(agreement(q_values, teacher_logits).item())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if gradient_steps > 0:
            self.logger.record("train/loss", np.mean(losses))
            self.logger.record("train/td_loss", np.mean(td_losses))
            self.logger.record("train/distill_loss", np.mean(distill_losses))
            self.logger.record("train/teacher_agreement", np.mean(agreements))
        self.logger.record("train/distill_coef", coef)
