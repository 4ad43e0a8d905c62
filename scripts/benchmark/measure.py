"""
Measurements taken inside a benchmark worker: evaluations along training, sizes, latency and throughput, peak memory,
gradient-step time. Functions of models and teachers; what to measure is decided by the suites and the runners.
"""

from __future__ import annotations

import resource
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .stats import normalized

#: Batch sizes of the latency / throughput measurements: one observation (acting), and a large batch (serving many
#: envs or robots at once, or labelling a dataset).
BATCH_SIZES = (1, 1024)


def eval_grid(budget: int) -> list[int]:
    """
    Env steps at which every run of an env is evaluated: every 500 up to 5,000, every 2,500 up to 20,000, then
    every 5,000 (and the budget itself), so that the curves of all seeds and methods share their points.

    :param budget: the run's env steps
    :return: sorted steps
    """
    grid = [*range(500, 5_001, 500), *range(7_500, 20_001, 2_500), *range(25_000, budget + 1, 5_000)]
    return sorted({step for step in grid if step <= budget} | {budget})


def count_parameters(modules: Sequence[Any]) -> int:
    """
    :param modules: torch modules (or ``None``, counted as 0)
    :return: their parameters, each parameter once
    """
    unique = {id(p): p for module in modules if module is not None for p in module.parameters()}
    return sum(p.numel() for p in unique.values())


def acting_and_critic_parameters(model: Any) -> tuple[int, int]:
    """
    :param model: a DQN-family model, or an actor-critic one (PolicyDistill, PPO)
    :return: parameters of the network that acts (the Q-network; for actor-critic students the features extractor,
        policy branch and action head, not the log std), and of the critic only used to learn (0 for DQN)
    """
    if hasattr(model, "q_net"):
        return count_parameters([model.q_net]), 0
    policy = model.policy
    acting = count_parameters([policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net])
    critic_modules = [policy.mlp_extractor.value_net, policy.value_net]
    if not policy.share_features_extractor:
        critic_modules.append(policy.vf_features_extractor)
    return acting, count_parameters(critic_modules)


def peak_rss_mb() -> float:
    """
    :return: peak resident set size of this process so far, in MB (Linux ``ru_maxrss`` is in KB)
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency_calls(
    predictor: Any, policy: Any, obs_normalizer: Any, observation_space: Any, workdir: Path, batch_sizes: Sequence[int] = (1,)
) -> dict[str, tuple[Callable[[], Any], int]]:
    """
    What to time of an agent (CPU, one thread), ready to call: SB3 ``predict()`` for one observation; and for each
    batch size the network's eager forward pass (observation normalization + network + greedy action, exactly what is
    exported) and the exported TorchScript and ONNX files. Keys: ``predict``, ``forward``, ``torchscript``, ``onnx`` (one
    observation) and ``forward@N`` ... (a batch of N).

    :param predictor: anything with SB3's ``predict`` (a model, a ``Teacher``)
    :param policy: its SB3 policy
    :param obs_normalizer: its ``VecNormalize`` statistics, if any
    :param observation_space: where the observations are drawn from
    :param workdir: where to write the exported files
    :param batch_sizes: batch sizes of the network measurements
    :return: name → (the call, how many times to time it)
    """
    import torch as th

    from sb3_distill.export import ExportedPolicy, export, load_exported

    observation_space.seed(0)
    batches = {size: np.stack([observation_space.sample() for _ in range(size)]).astype(np.float32) for size in batch_sizes}
    one = batches[min(batch_sizes)][0]
    calls: dict[str, tuple[Callable[[], Any], int]] = {"predict": (lambda: predictor.predict(one, deterministic=True), 500)}
    module = ExportedPolicy(policy, obs_normalizer)
    runners: dict[str, Any] = {}
    for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")):
        try:
            runners[fmt] = load_exported(export(policy, workdir / f"model{suffix}", fmt, vecnormalize=obs_normalizer))
        except Exception as error:  # an exporter missing on this machine must not lose the learning results
            warnings.warn(f"{fmt} latency not measured: {error}", stacklevel=2)
    for size, batch in batches.items():
        suffix = "" if size == 1 else f"@{size}"
        repeats = 500 if size == 1 else 100  # a large batch takes ~1 ms: fewer calls give as stable a median
        tensor = th.as_tensor(batch)

        def forward(tensor: th.Tensor = tensor) -> Any:
            with th.no_grad():
                return module(tensor)

        calls["forward" + suffix] = (forward, repeats)
        for fmt, run in runners.items():
            calls[fmt + suffix] = (lambda run=run, batch=batch: run(batch), repeats)
    return calls


def load_times(load: Callable[[bool], Any], repeats: int = 5) -> dict[str, float]:
    """
    Median seconds of a teacher's load by sb3-distill's safe reader and by SB3's (``trust_remote_code=True``), the
    two alternating, after a warm-up load each.

    :param load: ``load(trust)`` loads the teacher
    :param repeats: timed loads each way
    :return: ``{"safe": seconds, "trusted": seconds}``
    """
    times: dict[bool, list[float]] = {False: [], True: []}
    for trust in (False, True):
        load(trust)
    for index in range(repeats):
        for trust in (False, True) if index % 2 == 0 else (True, False):
            start = time.perf_counter()
            load(trust)
            times[trust].append(time.perf_counter() - start)
    return {"safe": float(np.median(times[False])), "trusted": float(np.median(times[True]))}


def time_calls(calls: dict[str, tuple[Callable[[], Any], int]]) -> dict[str, float]:
    """
    :param calls: name → (a call, how many times to time it), e.g. :func:`latency_calls`
    :return: name → median seconds per call
    """
    from sb3_distill.common.timing import median_seconds

    return {name: median_seconds(call, repeats) for name, (call, repeats) in calls.items()}


def interleaved_latencies(
    agents: dict[str, dict[str, tuple[Callable[[], Any], int]]], rounds: int = 5
) -> dict[str, dict[str, float]]:
    """
    Latencies of several agents timed in turns in one process, so that a load that comes and goes on a shared machine
    hits all of them alike (their ratios are then meaningful where absolute times are not).

    :param agents: agent name → its :func:`latency_calls`
    :param rounds: turns; each times every call ``repeats / rounds`` times (at least 20)
    :return: agent name → call name → median over the turns of the per-turn medians (seconds)
    """
    from sb3_distill.common.timing import median_seconds

    names = list(agents)
    samples: dict[str, dict[str, list[float]]] = {name: {call: [] for call in agents[name]} for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            for call, (function, repeats) in agents[name].items():
                samples[name][call].append(median_seconds(function, max(repeats // rounds, 20), warmup=5))
    return {name: {call: float(np.median(values)) for call, values in calls.items()} for name, calls in samples.items()}


def eval_callback_class() -> type:
    """
    :return: the class of the callback that evaluates a model along its training (built on demand: SB3 is imported
        in the workers only, so the parent process stays light)
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import sync_envs_normalization

    class TeacherNormalizedEval(BaseCallback):
        """
        Evaluate the model at fixed env steps (deterministic, ``n_eval_episodes`` on a separate env) and record
        the teacher-normalized score and the training wall time so far (evaluation time excluded).

        :param eval_env: the evaluation env
        :param eval_steps: env steps at which to evaluate
        :param n_eval_episodes: episodes per evaluation
        :param reference_returns: ``(G_random, G_teacher)``
        """

        def __init__(
            self, eval_env: Any, eval_steps: Sequence[int], n_eval_episodes: int, reference_returns: Sequence[float]
        ) -> None:
            super().__init__()
            self.eval_env = eval_env
            self.eval_steps = sorted(eval_steps)
            self.n_eval_episodes = n_eval_episodes
            self.reference_returns = reference_returns
            self.records: list[dict[str, float]] = []
            self._next = 0
            self._start = 0.0
            self._eval_seconds = 0.0

        def _on_training_start(self) -> None:
            self._start = time.perf_counter()

        def _on_step(self) -> bool:
            while self._next < len(self.eval_steps) and self.num_timesteps >= self.eval_steps[self._next]:
                started = time.perf_counter()
                sync_envs_normalization(self.training_env, self.eval_env)  # a student's own VecNormalize, if any
                mean, std = evaluate_policy(self.model, self.eval_env, self.n_eval_episodes, deterministic=True)
                train_seconds = started - self._start - self._eval_seconds
                self._eval_seconds += time.perf_counter() - started
                self.records.append(
                    dict(
                        step=int(self.eval_steps[self._next]),
                        mean_return=float(mean),
                        std_return=float(std),
                        normalized_score=normalized(float(mean), self.reference_returns),
                        train_seconds=float(train_seconds),
                    )
                )
                self._next += 1
            return True

    return TeacherNormalizedEval


def copy_replay_data(source: Any, target_model: Any) -> None:
    """
    Give ``target_model`` a plain SB3 ``ReplayBuffer`` holding ``source``'s transitions (so that gradient steps of two
    algorithms are timed on the same data).

    :param source: a replay buffer (any subclass of SB3's)
    :param target_model: an off-policy SB3 model with the same spaces
    """
    from stable_baselines3.common.buffers import ReplayBuffer

    buffer = ReplayBuffer(source.buffer_size, source.observation_space, source.action_space, device="cpu")
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        getattr(buffer, name)[:] = getattr(source, name)
    buffer.pos, buffer.full = source.pos, source.full
    target_model.replay_buffer = buffer


def replay_transition(buffer: Any, source: Any, index: int) -> None:
    """
    Add ``source``'s transition ``index`` to ``buffer`` again, as a new env step would.

    :param buffer: the buffer to add to
    :param source: the buffer to read from
    :param index: the transition
    """
    fields = ("observations", "next_observations", "actions", "rewards", "dones")
    buffer.add(*(getattr(source, name)[index].copy() for name in fields), [{}])


def gradient_step_times(
    models: dict[str, Any],
    n_steps: int,
    seed: int = 0,
    new_transitions: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """
    Seconds per gradient step of each model, interleaved in one process (alternating order, so that load from
    other processes hits all alike). With ``new_transitions``, one stored transition is added again to each buffer
    before every step, as an env step would with ``train_freq=1`` (a cache of teacher outputs pays for it there).

    :param models: name → model with ``train(gradient_steps, batch_size)`` and ``replay_buffer``; the buffers must
        hold the same transitions
    :param n_steps: timed gradient steps per model
    :param seed: seed of the transitions replayed
    :param new_transitions: add one transition per gradient step (else: gradient steps on a fixed buffer)
    :param clock: what is timed: wall time (``time.perf_counter``), or the CPU time of this process
        (``time.process_time``: with one torch thread, the work itself, which other processes on a shared machine do
        not stretch)
    :return: name → median seconds per gradient step (median over 5 blocks)
    """
    rng = np.random.default_rng(seed)
    reference = next(iter(models.values())).replay_buffer
    size = reference.size()
    blocks = 5
    per_block = max(n_steps // blocks, 1)
    totals: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for _ in range(blocks + 1):  # the first block warms up and is dropped
        spent = dict.fromkeys(names, 0.0)
        for step in range(per_block):
            index = int(rng.integers(size))
            order = names if step % 2 == 0 else names[::-1]
            for name in order:
                model = models[name]
                if new_transitions:
                    replay_transition(model.replay_buffer, reference, index)
                start = clock()
                model.train(gradient_steps=1, batch_size=model.batch_size)
                spent[name] += clock() - start
        for name in names:
            totals[name].append(spent[name] / per_block)
    return {name: float(np.median(values[1:])) for name, values in totals.items()}


class SupervisedStep:
    """
    A plain supervised gradient step of a copy of a PolicyDistill student: behaviour cloning of the stored actions
    (-log π(a | s) on a batch sampled from a plain SB3 ``ReplayBuffer`` holding the same transitions, normalized by
    the student's ``VecNormalize`` if it has one, as its own inputs are), same architecture, optimizer and batch
    size. What a gradient step of this student costs without any teacher: the reference of PolicyDistill's
    gradient-step time.

    :param model: a PolicyDistill holding its replay data
    """

    def __init__(self, model: Any) -> None:
        import copy

        from gymnasium import spaces

        self.policy = copy.deepcopy(model.policy)
        self.policy.optimizer = self.policy.optimizer_class(
            self.policy.parameters(), lr=model.lr_schedule(1.0), **self.policy.optimizer_kwargs
        )
        self.batch_size = model.batch_size
        self.discrete = isinstance(model.action_space, spaces.Discrete)
        self.vec_normalize = model.get_vec_normalize_env()
        copy_replay_data(model.replay_buffer, self)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        """
        :param gradient_steps: gradient steps to take
        :param batch_size: minibatch size
        """
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self.vec_normalize)
            distribution = self.policy.get_distribution(data.observations)
            # Stored Box actions are in [-1, 1]: kept inside, where a tanh-squashed student has a density.
            actions = data.actions.long().flatten() if self.discrete else data.actions.clamp(-0.999, 0.999)
            loss = -distribution.log_prob(actions).mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            self.policy.optimizer.step()


def policy_distill_step_times(
    make_model: Callable[[bool], Any], fill: int, n_steps: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, Any]:
    """
    Seconds per gradient step of PolicyDistill with its teacher-output cache, with its teachers labelling each batch,
    and of a plain supervised step of the same student (:class:`SupervisedStep`), interleaved in one process, with
    one new transition per step (``"+1 transition"``) and on a fixed buffer.

    :param make_model: ``cache_teacher_outputs`` → an untrained PolicyDistill (same seed: both fill the same data)
    :param fill: env steps played before timing (``learning_starts`` must exceed them: no training while filling)
    :param n_steps: timed gradient steps per variant
    :param clock: wall time or this process's CPU time (see :func:`gradient_step_times`)
    :return: seconds per step and ratios to the supervised step, per set-up
    """
    from stable_baselines3.common.logger import configure

    cached, live = make_model(True).learn(fill), make_model(False).learn(fill)
    for model in (cached, live):
        model.set_logger(configure(None, []))
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        getattr(live.replay_buffer, name)[:] = getattr(cached.replay_buffer, name)  # the same data, whatever the seed
    variants = {"PolicyDistill, cache": cached, "PolicyDistill, per batch": live, "plain supervised": SupervisedStep(cached)}
    result: dict[str, Any] = {}
    for setup, new in (("+1 transition", True), ("fixed buffer", False)):
        times = gradient_step_times(variants, n_steps, new_transitions=new, clock=clock)
        result[setup] = {name: {"seconds": value, "ratio": value / times["plain supervised"]} for name, value in times.items()}
    return result
