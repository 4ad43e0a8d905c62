import copy
import warnings
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, RolloutReturn, Schedule
from stable_baselines3.dqn import DQN
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy, MlpPolicy, MultiInputPolicy

from sb3_distill.common.distill_coef import DistillCoef, DistillCoefMixin
from sb3_distill.common.buffers import TeacherCacheMixin, TeacherReplayBufferSamples, teacher_replay_buffer_class
from sb3_distill.common.guards import check_loss_is_finite
from sb3_distill.common.renamed import accepts_renamed_keywords
from sb3_distill.common.teacher_mixin import TeacherMixin
from sb3_distill.common.teacher_observations import env_teacher_observation_space
from sb3_distill.common.weight_average import check_ema_tau, ema_update, swap_weights
from sb3_distill.distill_dqn.recipes import (
    AUTO_RECIPE,
    DEFAULT_RECIPE,
    choose_auto_recipe,
    recipe_settings,
    resolve_recipe,
)
from sb3_distill.errors import IncompatibleTeacherError
from sb3_distill.losses import agreement, distillation_loss, td_loss
from sb3_distill.teachers import Teacher
from sb3_distill.teachers.loading import TeacherSpec


class DistillDQN(DistillCoefMixin, TeacherMixin, DQN):
    """
    DQN whose student Q-network also learns from a teacher: L = TD + α_t · D.

    D (``distill_loss``): ``"kl"`` between p_X = softmax(Q_X(s) / T) (forward KL(p_T‖p_S) or, with
    ``kl_direction="student_teacher"``, KL(p_S‖p_T)), ``"mse"`` mean_a (Q_S − Q_T)², or ``"nll"`` cross-entropy of
    the teacher's greedy action; times T² when ``temperature_scaling``. TD (``td_target``): the plain DQN target
    (``"student"``), r + γ max_a' Q_T(s', a') (``"teacher"``), or none (``"none"``). Named recipes (``recipe=``:
    ``"outgrow"``, ``"reincarnate"``, ``"qdagger"``, ``"policy_distillation"``, ``"teacher_td_reverse_kl"``) set all
    of these; explicit keywords override them.

    The default, ``recipe="auto"``, chooses at the first ``learn()`` between copying and outgrowing the teacher: a
    teacher whose return reaches the env's reward threshold (gymnasium's ``spec.reward_threshold``; or an env without
    one) is copied by ``"policy_distillation"`` (no TD term: the fastest and steadiest to a strong teacher's level on
    all four classic envs); one below it is outgrown by ``"outgrow"``: DQN's 3-step TD loss beside the same sharp KL,
    α_t = max(1 − s, 0)³ (s: QDagger's score, the student's teacher-normalized training return), which took students
    of the weak CartPole (0.36) and Acrobot (0.29) teachers to 0.89-1.0 in 20,000 env steps. No single recipe did both:
    with a TD term, students of the strong Acrobot, MountainCar and LunarLander teachers are unsteady (a MountainCar
    student fell from 0.98 to 0.0 even at α = 1). What was chosen and why: ``recipe``, ``recipe_choice``;
    ``set_env()`` to another env chooses again at the next ``learn()``, from the teacher's return there.
    Numbers: ``docs/guide/distill_dqn.md``, "Which default".

    Like QR-DQN, DistillDQN has defaults of its own, chosen for distillation. Those that differ from DQN's, and why:

    * ``learning_rate=1e-3`` (DQN: 1e-4), ``batch_size=64`` (32), ``train_freq=1`` (4): the teacher's labels are
      available from the first step and cost no env steps, so the student learns at every step and fast; with DQN's
      values a ``net_arch=[32]`` student scored 43 / 17 / 272 after 5,000 steps (issue 10).
    * ``n_steps=None``: the recipe's (DQN's 1, or 3 for ``"outgrow"`` and ``"auto"``, whose TD term must take over from a weak
      teacher within distillation's budgets: from the weak CartPole teacher (0.36), seed 0, 1-step TD scored
      0.46 / 0.71 / 0.36 / 0.95 at 10k / 20k / 25k / 30k env steps, 3-step TD 1.0 / 0.89 at 10k / 20k).
    * ``exploration_initial_eps=0.05`` (1.0): a constant ε; the teacher, not ε-greedy search, says where to go (DQN's
      decay from 1.0 fills the first 10% of the budget with random actions).
    * ``target_update_interval=250`` (10,000): for the recipes with a TD term, the target network must follow the
      student within the short budgets distillation is for; 10,000 steps is longer than most of them.
    * ``buffer_size=100_000`` (1,000,000): a distillation budget never fills a million transitions.

    The teacher sees raw observations (with its own VecNormalize statistics) even when the student's env is
    VecNormalize-wrapped. It is never saved: ``save()`` writes the student only, ``load(path)`` predicts without a
    teacher and ``load(path, env=env, teacher=...)`` continues training.

    All of DQN's parameters (see ``stable_baselines3.DQN``) plus:

    :param n_steps: DQN's n of n-step TD targets; ``None``: the recipe's (3 for ``"outgrow"`` and ``"auto"``, else
        DQN's 1)
    :param teacher: a :class:`~sb3_distill.teachers.Teacher` or any spec ``load_teacher`` takes
        (``"dqn/CartPole-v1"``, a zip, an rl-zoo3 run folder, a loaded model, ``"hub:sb3/dqn-CartPole-v1"``)
    :param recipe: ``"auto"`` (default: ``"policy_distillation"`` or ``"outgrow"``, chosen at the first ``learn()``
        by the teacher's return against the env's reward threshold), ``"policy_distillation"``, ``"outgrow"``,
        ``"reincarnate"``, ``"qdagger"`` or ``"teacher_td_reverse_kl"`` (formerly ``"seed"``)
    :param distill_loss: ``"kl"``, ``"mse"``, ``"nll"`` or ``"auto"`` (chosen from the teacher: ``"mse"`` for a
        teacher with Q-values, else ``"kl"``)
    :param kl_direction: ``"teacher_student"`` (KL(p_T‖p_S)) or ``"student_teacher"`` (KL(p_S‖p_T))
    :param temperature: T > 0 of the softmax over Q-values / logits
    :param temperature_scaling: multiply D by T²
    :param td_target: ``"student"``, ``"teacher"`` or ``"none"``
    :param td_loss: ``"huber"`` or ``"mse"``
    :param distill_coef: α_t ≥ 0, the same forms as DistillPPO's (:mod:`sb3_distill.common.distill_coef`): a float,
        an SB3 schedule (a callable of the remaining progress, 1 → 0), ``"lin_<α_0>"``, or ``"qdagger"`` /
        ``"qdagger_<α_0>"``: QDagger's rule, α_t = α_0 · max(clip(1 − s, 0, 1)^p, α_min), s = (Ĝ_S − G_random) /
        (G_teacher − G_random) with Ĝ_S over the student's last 10 training episodes (teacher-phase episodes excluded)
    :param anneal_exponent: p > 0 of ``distill_coef="qdagger"`` (1: QDagger's linear rule; ``"outgrow"``: 3)
    :param anneal_floor: α_min in [0, 1] of ``distill_coef="qdagger"`` (0 in every recipe: QDagger's rule). 0.01
        held an ``"outgrow"`` student of the strong Acrobot teacher at its level (0.96-1.0 where 0 fell to 0.0, seed
        0) but kept a student of the weak CartPole teacher near it (0.50 at 20,000 steps where 0 gave 0.89)
    :param teacher_rollout_steps: env steps played by the teacher (ε-greedy, ε = ``exploration_final_eps``) into
        the replay buffer before the student acts; they count in ``num_timesteps``
    :param pretrain_gradient_steps: extra gradient steps taken once, right after the teacher phase
    :param reference_returns: ``(G_random, G_teacher)`` for ``distill_coef="qdagger"`` and ``recipe="auto"``;
        default ``None``: measured once per teacher on a separate env (10 episodes each; a copy of the student's env
        when it behaves differently from its registered id, e.g. shifted dynamics), and not saved (see
        :meth:`~sb3_distill.common.teacher_mixin.TeacherMixin.teacher_reference_returns`)
    :param cache_teacher_outputs: store the teacher's logits per transition in the replay buffer
        (:class:`~sb3_distill.common.buffers.TeacherReplayBuffer` and its dict / n-step siblings, SB3's buffers with
        the raw observations kept for the teacher), computed once in a batched pass over the new transitions at each
        update, instead of a teacher forward pass per sampled batch. Used when ``replay_buffer_class`` is not given;
        faster per gradient step, same values (``python -m scripts.benchmark`` measures it)
    :param ema_tau: τ in (0, 1] of an exponential moving average of the student's Q-network weights,
        θ̄ ← (1 - τ) θ̄ + τ θ after every gradient step (``None``, the default: no average). With an average, ``q_net``
        holds θ̄ outside of :meth:`train` and of the student's env steps: it predicts (evaluations included), is saved
        and exported, and the target network copies it; the gradient steps update θ, kept in ``unaveraged_q_net``
        (saved too, so that training resumes exactly), and θ chooses the actions of the env steps during ``learn()``
        (unlike PolicyDistill's ``ema_tau``, where the average acts: θ's swings visit more states for the teacher to
        label). It steadies a student that cannot copy its teacher exactly, e.g. a privileged teacher's student
        without velocities (docs/guide/robustness.md, "Privileged teachers")
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }

    @accepts_renamed_keywords
    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 100,
        batch_size: int = 64,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int | None = None,
        target_update_interval: int = 250,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 0.05,
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
        distill_coef: DistillCoef | None = None,
        teacher_rollout_steps: int | None = None,
        pretrain_gradient_steps: int | None = None,
        anneal_exponent: float | None = None,
        anneal_floor: float | None = None,
        reference_returns: tuple[float, float] | None = None,
        cache_teacher_outputs: bool = True,
        ema_tau: float | None = None,
    ) -> None:
        # Checked before anything is built, so bad input costs nothing.
        self.recipe = resolve_recipe(recipe or DEFAULT_RECIPE)
        check_ema_tau(ema_tau)
        self.ema_tau = ema_tau
        self.unaveraged_q_net: th.nn.Module | None = None
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
            anneal_exponent=anneal_exponent,
            anneal_floor=anneal_floor,
            n_steps=n_steps,
        )
        # Kept so that recipe="auto" can apply the recipe it chooses at learn() under the same explicit keywords
        self.explicit_settings = {key: value for key, value in explicit.items() if value is not None}
        settings = self._apply_recipe(self.recipe)
        # DQN's n-step TD targets, part of the recipe (3 for "outgrow" and "auto", DQN's 1 otherwise) unless given
        n_steps = int(settings["n_steps"])
        if optimize_memory_usage and n_steps > 1 and replay_buffer_class is None:
            # SB3's n-step buffer cannot share observations between transitions (it raises NotImplementedError)
            if self.recipe == AUTO_RECIPE and "n_steps" not in self.explicit_settings:
                n_steps = 1  # "auto" then bootstraps 1-step targets, should it choose "outgrow"
            else:
                raise ValueError(
                    f"n_steps={n_steps} (recipe {self.recipe!r}) needs SB3's n-step replay buffer, which does not "
                    "support optimize_memory_usage=True: pass optimize_memory_usage=False or n_steps=1."
                )
        #: What recipe="auto" chose and why (a sentence), once learn() has decided; None otherwise
        self.recipe_choice: str | None = None
        self.reference_returns = reference_returns
        self.cache_teacher_outputs = cache_teacher_outputs
        self._init_teacher(teacher, _init_setup_model)
        # Saved with the model, so that save -> load -> learn() does not replay the teacher phase
        self.pretrained = False
        self.teacher_phase_episodes = 0

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

    # ------------------------------------------------------------------ recipes
    def _apply_recipe(self, recipe: str) -> dict[str, Any]:
        """
        Set the loss's keywords from ``recipe``'s settings and the explicit keywords (which win), checked.

        :param recipe: a name in :data:`~sb3_distill.distill_dqn.recipes.RECIPES`, or ``"auto"`` (its settings until
            :meth:`_choose_recipe` decides)
        :return: the settings applied
        """
        settings = recipe_settings(recipe, self.explicit_settings)
        self.distill_loss: str = settings["distill_loss"]
        self.kl_direction: str = settings["kl_direction"]
        self.td_target: str = settings["td_target"]
        self.td_loss: str = settings["td_loss"]
        self.temperature: float = settings["temperature"]
        self.temperature_scaling: bool = settings["temperature_scaling"]
        self.distill_coef = settings["distill_coef"]
        self._parse_distill_coef()
        self.anneal_exponent = settings["anneal_exponent"]
        self.anneal_floor = settings["anneal_floor"]
        self.teacher_rollout_steps: int = settings["teacher_rollout_steps"]
        self.pretrain_gradient_steps: int = settings["pretrain_gradient_steps"]
        # n_steps is DQN's own attribute, set by DQN.__init__ from the value __init__ passes on
        return settings

    def _choose_recipe(self) -> None:
        """
        ``recipe="auto"``: copy a teacher that solves the env (``"policy_distillation"``), outgrow one that does not
        (``"outgrow"``). Solved = the teacher's reference return (measured once; or ``reference_returns``) reaches the
        env's ``spec.reward_threshold``; an env without a threshold counts as solved. Sets ``recipe`` and
        ``recipe_choice`` (said at ``verbose >= 1``).
        """
        if self.recipe != AUTO_RECIPE:
            return
        chosen, reason = choose_auto_recipe(self._env_id(), lambda: self.teacher_reference_returns()[1])
        measurement = self.reference_measurement
        if measurement is not None and measurement.where == "student_env":  # else: the env id's, as always
            reason += f", {measurement.note}"
        self.recipe = chosen
        self._apply_recipe(chosen)
        self._resolve_auto_loss()
        self.recipe_choice = f"recipe='auto' chose {chosen!r}: {reason} (pass recipe= to choose yourself)."
        if self.verbose >= 1:
            print(self.recipe_choice)

    def _forget_env_choices(self) -> None:
        # set_env() to another env: a recipe that "auto" chose from the previous env's teacher return is chosen again
        if self.recipe_choice is not None:
            self.recipe, self.recipe_choice = AUTO_RECIPE, None
            self._apply_recipe(AUTO_RECIPE)
            self._resolve_auto_loss()

    def _resolve_auto_loss(self) -> None:
        if self.distill_loss == "auto" and self.teachers:
            # Q-values when the teacher has them (a value-calibrated start for the TD term), else its policy.
            self.distill_loss = "mse" if self.teachers[0].has_q_values else "kl"

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        self._choose_recipe()
        return super()._setup_learn(*args, **kwargs)

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        # The teacher first: a wrong teacher must fail before buffers and networks are allocated.
        self._setup_teachers()
        # load(path, distill_coef=...) sets the attribute without __init__ (and a saved zip may hold an old spelling)
        self._parse_distill_coef()
        self._resolve_auto_loss()
        if self.replay_buffer_class is None:
            self.replay_buffer_class, extra_kwargs = self._teacher_buffer_class()
            self.replay_buffer_kwargs.update(extra_kwargs)
        elif not issubclass(self.replay_buffer_class, TeacherCacheMixin) and (
            self._vec_normalize_env is not None or env_teacher_observation_space(self.env) is not None
        ):
            raise ValueError(
                f"replay_buffer_class={self.replay_buffer_class.__name__} keeps only the student's observations, and "
                "the teacher needs its own (the raw ones of a VecNormalize env, or the env's teacher "
                "observations): leave replay_buffer_class=None (DistillDQN then uses SB3's buffer with the teacher's "
                "observations kept) or derive it from sb3_distill.common.buffers.TeacherCacheMixin."
            )
        with warnings.catch_warnings():
            # SB3 warns that n_steps is ignored whenever a replay_buffer_class is set (off_policy_algorithm.py,
            # _setup_model); ours is the n-step buffer SB3 would have chosen, given n_steps and gamma above.
            warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom `replay_buffer_class`")
            super()._setup_model()
        if self.ema_tau is not None:
            # θ (trained) and θ̄ (averaged, in q_net) start equal; only the weights are used from this copy
            self.unaveraged_q_net = copy.deepcopy(self.q_net)
            self.unaveraged_q_net.requires_grad_(False)

    def _averaged_parameters(self) -> tuple[list[th.Tensor], list[th.Tensor]]:
        """
        :return: the parameters of ``q_net`` and of ``unaveraged_q_net``, listed once per pair of networks (listing
            walks every module: at one gradient step per env step it would cost more than the average itself)
        """
        assert self.unaveraged_q_net is not None
        cached: tuple[Any, ...] | None = getattr(self, "_ema_parameters", None)
        if cached is None or cached[0] is not self.q_net or cached[1] is not self.unaveraged_q_net:
            trained, averaged = list(self.q_net.parameters()), list(self.unaveraged_q_net.parameters())
            if len(trained) != len(averaged):
                raise RuntimeError("q_net and unaveraged_q_net no longer have the same parameters.")
            cached = self._ema_parameters = (self.q_net, self.unaveraged_q_net, trained, averaged)
        return cached[2], cached[3]

    def _teacher_buffer_class(self) -> tuple[type[ReplayBuffer], dict[str, Any]]:
        """SB3's choice of buffer (off_policy_algorithm.py, ``_setup_model``), keeping what the teacher sees and says."""
        buffer_class = teacher_replay_buffer_class(self.observation_space, self.n_steps)
        n_step = issubclass(buffer_class, NStepReplayBuffer)
        return buffer_class, ({"n_steps": self.n_steps, "gamma": self.gamma} if n_step else {})

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

    # ------------------------------------------------------------------ learn: teacher phase, pre-training, online
    # DQN's learn() (TeacherMixin.learn checks the teacher first) in up to three phases: (1) for the first
    # teacher_rollout_steps env steps the teacher acts (ε-greedy) into the replay buffer (_sample_action); (2) right
    # after, pretrain_gradient_steps gradient steps on that data (collect_rollouts); (3) the student acts and learns
    # online. Phases 1-2 happen once per model (they survive save/load) and count in num_timesteps.
    def _in_teacher_phase(self) -> bool:
        return self.num_timesteps < self.teacher_rollout_steps

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        # Phase 1: the teacher acts (the hook SB3's collect_rollouts calls for every env step).
        if not self._in_teacher_phase():
            if self.unaveraged_q_net is None:
                return super()._sample_action(learning_starts, action_noise, n_envs)
            # ema_tau: the trained weights θ collect the env steps (their swings explore), the average θ̄ is the model
            swap_weights(*self._averaged_parameters())
            try:
                return super()._sample_action(learning_starts, action_noise, n_envs)
            finally:
                swap_weights(*self._averaged_parameters())
        teacher = self._require_teacher()
        # The teacher acts on what it sees (raw observations, not the student's normalized ones).
        actions, _ = teacher.predict(self._teacher_current_observations(), deterministic=True)  # type: ignore[arg-type]
        explore = np.random.rand(n_envs) < self.exploration_final_eps
        actions = np.where(explore, [self.action_space.sample() for _ in range(n_envs)], actions)
        return actions, actions

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> RolloutReturn:
        """
        SB3's ``collect_rollouts``; after the rollout that ends the teacher phase, phase 2 (offline pre-training).

        :return: SB3's rollout summary
        """
        rollout = super().collect_rollouts(*args, **kwargs)
        if self.teacher_rollout_steps > 0 and not self.pretrained and not self._in_teacher_phase():
            self.pretrained = True
            self.teacher_phase_episodes = self._episode_num
            if self.pretrain_gradient_steps > 0:
                self.train(gradient_steps=self.pretrain_gradient_steps, batch_size=self.batch_size)
        return rollout

    # ------------------------------------------------------------------ the distillation weight
    def _student_returns(self) -> list[float]:
        """The student's own latest training episodes (QDagger's score): none during and from the teacher phase."""
        student_episodes = self._episode_num - self.teacher_phase_episodes
        if self._in_teacher_phase() or student_episodes <= 0:
            return []
        return super()._student_returns()[-student_episodes:]

    # ------------------------------------------------------------------ the loss
    def _teacher_logits(self, replay_data: ReplayBufferSamples | TeacherReplayBufferSamples) -> th.Tensor:
        """The teacher's logits on s: cached in the replay buffer, else one forward pass on what the teacher sees."""
        cached = getattr(replay_data, "teacher_logits", None)
        if cached is not None:
            return cached
        return self._require_teacher().action_logits(_raw(replay_data, "observations"))

    def _next_q_values(self, replay_data: ReplayBufferSamples | TeacherReplayBufferSamples) -> th.Tensor:
        """max_a' Q(s', a') of the TD target: the student's target network (DQN), or the teacher (``td_target="teacher"``)."""
        if self.td_target == "teacher":
            next_q_values = self._require_teacher().q_values(_raw(replay_data, "next_observations"))
        else:
            next_q_values = self.q_net_target(replay_data.next_observations)
        # Follow greedy policy: use the one with the highest value; reshape to avoid a broadcast issue
        return next_q_values.max(dim=1).values.reshape(-1, 1)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        teacher = self._require_teacher()
        # The teacher's logits for the transitions stored since the last update, in one batched pass
        if self.cache_teacher_outputs and isinstance(self.replay_buffer, TeacherCacheMixin):
            self.replay_buffer.update_teacher_outputs(teacher)
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)
        # Weight of the distillation term: constant, scheduled, or annealed on the student's returns
        distill_coef = self.current_distill_coef()
        average = None
        if self.unaveraged_q_net is not None:
            swap_weights(*self._averaged_parameters())  # train θ; unaveraged_q_net holds θ̄ meanwhile
            average = ema_update(float(self.ema_tau))  # type: ignore[arg-type]

        logged = []
        for _ in range(gradient_steps):
            # Sample replay buffer (normalized for the student; what the teacher sees and its logits ride along)
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                teacher_logits = self._teacher_logits(replay_data)
                # 1-step (or n-step) TD target, unless the student only imitates (td_target="none")
                if self.td_target != "none":
                    next_q_values = self._next_q_values(replay_data)
                    target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates
            q_values = self.q_net(replay_data.observations)
            # Retrieve the q-values for the actions from the replay buffer
            current_q_values = th.gather(q_values, dim=1, index=replay_data.actions.long())

            # DQN's loss (Huber by default; none when the student only imitates) ...
            td = current_q_values.new_zeros(())
            if self.td_target != "none":
                td = td_loss(current_q_values, target_q_values, self.td_loss)  # type: ignore[arg-type]
            # ... plus the distillation term, the one line DQN does not have
            distill = distillation_loss(
                self.distill_loss,  # type: ignore[arg-type]
                q_values,
                teacher_logits,
                temperature=self.temperature,
                direction=self.kl_direction,  # type: ignore[arg-type]
                temperature_scaling=self.temperature_scaling,
            )
            loss = td + distill_coef * distill
            # A NaN or inf stops the run here, before it reaches the weights (0·r: a bad reward counts even when the
            # recipe has no TD term, since it means the env is broken)
            check_loss_is_finite(
                loss + 0.0 * replay_data.rewards.sum(),
                self.num_timesteps,
                "DistillDQN",
                observations=replay_data.observations,
                next_observations=replay_data.next_observations,
                rewards=replay_data.rewards,
                **{"teacher outputs": teacher_logits},
            )

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            loss.backward()
            # Clip gradient norm
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            if average is not None:
                trained, averaged = self._averaged_parameters()
                average(averaged, trained, None)
            logged.append(th.stack([loss, td, distill, agreement(q_values, teacher_logits)]).detach())

        if self.unaveraged_q_net is not None:
            swap_weights(*self._averaged_parameters())  # θ̄ acts (and the target network copies it), θ waits

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if logged:
            # The four logged values of all gradient steps copied to the CPU together (the finite check above
            # already syncs once per step)
            mean_loss, mean_td, mean_distill, mean_agreement = th.stack(logged).mean(dim=0).tolist()
            self.logger.record("train/loss", mean_loss)
            self.logger.record("train/td_loss", mean_td)
            self.logger.record("train/distill_loss", mean_distill)
            self.logger.record("train/teacher_agreement", mean_agreement)
        self.logger.record("train/distill_coef", distill_coef)

    # ------------------------------------------------------------------ save
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_ema_parameters"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        averaged = ["unaveraged_q_net"] if self.unaveraged_q_net is not None else []
        return [*state_dicts, *averaged], variables


def _raw(replay_data: ReplayBufferSamples | TeacherReplayBufferSamples, field: str) -> Any:
    """What the teacher sees of the samples: kept by DistillDQN's buffers, else the samples (no VecNormalize)."""
    raw = getattr(replay_data, f"teacher_{field}", None)
    return raw if raw is not None else getattr(replay_data, field)
