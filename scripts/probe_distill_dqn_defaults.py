"""Why DistillDQN's defaults dip where they do (issue 20): the reincarnation suite's ``distill_dqn:defaults`` run, replayed
with what the student does recorded at each of the suite's evaluations.

The run is the suite's own (``scripts/benchmark/suites/reincarnation.py``: same env, seeds, model, evaluation env and
callback; the records only read the model, they draw no random numbers, so the curve is the suite's bit for bit). At
each evaluation it adds: what ``recipe="auto"`` chose, the distillation weight α_t and QDagger's score s behind it,
the student's last 10 training returns, its ε, and on the last ``--window`` states of the replay buffer (by index, no
sampling): the student's mean max Q, its mean gap between the two best actions, and how often its greedy action is the
teacher's. ``--kwargs`` (JSON) passes extra DistillDQN keywords, to test a change against the default at equal seeds.

Examples::

    python scripts/probe_distill_dqn_defaults.py --env Acrobot-v1 --seed 0 --out probe.jsonl
    python scripts/probe_distill_dqn_defaults.py --env Acrobot-v1 --seed 0 --kwargs '{"anneal_floor": 0.01}' --out probe.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.benchmark.measure import eval_callback_class
from scripts.benchmark.runners import setup_worker, teacher_job
from scripts.benchmark.suite import get_suite

SUITE = "reincarnation"


def _buffer_stats(model: Any, window: int) -> dict[str, float]:
    """The student's Q-values and its agreement with the teacher on the latest ``window`` states of its buffer."""
    buffer = model.replay_buffer
    size = buffer.buffer_size if buffer.full else buffer.pos
    if size == 0:
        return {}
    indices = (np.arange(buffer.pos - min(window, size), buffer.pos)) % buffer.buffer_size
    observations = buffer.observations[indices, 0]
    with th.no_grad():
        q_values = model.q_net(th.as_tensor(observations, dtype=th.float32))
        teacher_logits = model.teachers[0].action_logits(th.as_tensor(observations, dtype=th.float32))
    top2 = th.topk(q_values, 2, dim=1).values
    return dict(
        q_max=round(float(top2[:, 0].mean()), 2),
        q_gap=round(float((top2[:, 0] - top2[:, 1]).mean()), 3),
        agreement=round(float((q_values.argmax(1) == teacher_logits.argmax(1)).float().mean()), 3),
    )


def probe(
    env_id: str, seed: int, kwargs: dict[str, Any], window: int, teacher_spec: str | None, zoo_dir: str | None
) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    from sb3_distill import DistillDQN

    setup_worker()
    teachers = {env_id: teacher_spec} if teacher_spec else None
    suite = get_suite(SUITE, teachers)
    record = teacher_job(SUITE, suite.teachers, env_id, zoo_dir)
    reference = (record["random_return"], record["reference_return"])
    teacher = suite.load_teacher(env_id, zoo_dir)
    env = suite.make_env(env_id, teacher, seed)
    if kwargs:
        model = DistillDQN("MlpPolicy", env, teacher=teacher, seed=seed, device="cpu", **kwargs)
    else:
        model = suite.build_model("distill_dqn:defaults", env_id, env, teacher, seed, {})
    budget = suite.budget(env_id, "distill_dqn:defaults", argparse.Namespace(quick=False, budget_scale=1.0))
    steps = suite.eval_steps(budget)
    evaluation = eval_callback_class()(suite.make_eval_env(env_id, teacher, 10_000 + seed), steps, 10, reference)
    diagnostics: list[dict[str, Any]] = []

    class Diagnose(BaseCallback):
        """Reads the model at the suite's evaluation steps (after the evaluation callback, so on the same step)."""

        def _on_step(self) -> bool:
            if len(diagnostics) < len(evaluation.records):
                student: Any = self.model
                score = student.student_score()
                diagnostics.append(
                    dict(
                        step=evaluation.records[-1]["step"],
                        eval_return=round(evaluation.records[-1]["mean_return"], 1),
                        eval_std=round(evaluation.records[-1]["std_return"], 1),
                        alpha=round(student.current_distill_coef(), 4),
                        score=None if score is None else round(score, 3),
                        train_returns=[round(info["r"], 1) for info in list(student.ep_info_buffer)[-10:]],
                        epsilon=round(student.exploration_rate, 3),
                        **_buffer_stats(student, window),
                    )
                )
            return True

    started = time.perf_counter()
    model.learn(budget, callback=CallbackList([evaluation, Diagnose()]))
    return dict(
        env=env_id,
        seed=seed,
        teacher=suite.teachers[env_id],
        teacher_return=record["teacher_return"],
        kwargs=kwargs,
        recipe_choice=model.recipe_choice,
        n_steps=model.n_steps,
        curve=[round(r["mean_return"], 1) for r in evaluation.records],
        diagnostics=diagnostics,
        seconds=round(time.perf_counter() - started, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Acrobot-v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kwargs", default="{}", help="extra DistillDQN keywords (JSON); {} is the suite's build")
    parser.add_argument("--window", type=int, default=2000, help="latest buffer states the Q statistics are taken on")
    parser.add_argument("--teacher", default=None, help="zoo id of the teacher (default: the suite's weak one)")
    parser.add_argument("--zoo-dir", default=None)
    parser.add_argument("--out", required=True, help="a JSON-lines file the record is appended to")
    args = parser.parse_args()
    result = probe(args.env, args.seed, json.loads(args.kwargs), args.window, args.teacher, args.zoo_dir)
    line = json.dumps(result)
    print(line)
    with open(args.out, "a") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
