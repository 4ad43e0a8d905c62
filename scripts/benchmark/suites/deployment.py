"""
Students on the device: the classic students (DistillDQN's default and PolicyDistill, ``[32, 32]``, trained as in the
classic suite) exported to C as float32, int8, 4 bits after training, and 4 bits after quantization-aware
distillation; per cell the teacher-normalized return of the exported C itself (compiled for this machine), the
action agreement with the float student, flash and RAM on a Cortex-M4 (``arm-none-eabi-gcc -Os``), and the host
latency per action of C, ONNX Runtime, TorchScript and SB3 ``predict()`` (interleaved, one process).

The work is in the suite's probes: run it with ``--probes-only`` (the learning curves are the classic suite's)::

    python -m scripts.benchmark --suite deployment --probes-only --quick --jobs 1 --out runs/deployment
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..report import table
from ..stats import normalized
from ..suite import Job, Suite
from .classic import SUITE as CLASSIC

#: The students (classic-suite method names) and their labels
STUDENTS = {"distill_dqn:policy_distillation": "DistillDQN (default)", "policy_distill": "PolicyDistill"}
#: Exported variants: name → (quantization, quantization-aware distillation steps)
VARIANTS = {"float32": (None, 0), "int8": ("int8", 0), "int4": ("int4", 0), "int4 QAD": ("int4", 1_000)}
#: Quantization-aware distillation's learning rate (a tenth of the students' 1e-3, as fine-tuning)
QAD_LEARNING_RATE = 1e-4


class DeploymentSuite(Suite):
    name = "deployment"
    description = "classic students → C (float32, int8, int4, int4 after quantization-aware distillation) on a Cortex-M4"
    envs = CLASSIC.envs
    teachers = dict(CLASSIC.teachers)
    methods = dict(STUDENTS)
    budgets = CLASSIC.budgets
    learning_columns = ("params", "seeds", "final")

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        return CLASSIC.build_model(method, env_id, env, teacher, seed, spec)

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        episodes = args.eval_episodes or (10 if args.quick else 30)
        return [
            Job(
                deployment_job,
                (env_id, method, seed, settings["budgets"][env_id][method], zoo_dir, episodes),
                f"deployment {env_id} {method} seed {seed}",
                "deployment",
                weight=settings["budgets"][env_id][method],
                seed=seed,
            )
            for seed in range(max(settings["seeds"].values()))
            for env_id in args.envs
            for method in args.methods
        ]

    def report_sections(self, results: dict[str, Any]) -> list[str]:
        return deployment_sections(results)


def episode_returns(policy: Any, env_id: str, episodes: int, seed: int) -> list[float]:
    """
    :param policy: an exported policy (``load_exported``: a batch of observations -> actions, scores)
    :param env_id: gymnasium id of a discrete-action env
    :param episodes: how many episodes
    :param seed: episode i is reset with ``seed + i``
    :return: the return of each episode
    """
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = policy(obs[None])
            obs, reward, terminated, truncated, _ = env.step(int(action[0]))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def _latency(callables: dict[str, Any], obs: Any, rounds: int = 30, calls: int = 200) -> dict[str, float]:
    """Median µs per call of each callable on one observation, interleaved round by round."""
    import numpy as np

    samples: dict[str, list[float]] = {name: [] for name in callables}
    for _ in range(rounds):
        for name, function in callables.items():
            started = time.perf_counter()
            for _ in range(calls):
                function(obs)
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: float(np.median(values)) for name, values in samples.items()}


def deployment_job(env_id: str, method: str, seed: int, budget: int, zoo_dir: str, episodes: int) -> dict[str, Any]:
    """
    Train one classic student, export it four ways and measure each (run in a worker process).

    :param env_id: gymnasium id
    :param method: a classic-suite student method
    :param seed: seed of the student
    :param budget: its env steps
    :param zoo_dir: the teachers' snapshot
    :param episodes: evaluation episodes of each exported variant
    :return: the measurements
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch as th
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_distill.device import cortex_m4_size
    from sb3_distill.device.qat import quantization_aware_distill
    from sb3_distill.device.quantize import agreement
    from sb3_distill.export import ExportedPolicy, calibration_data, export, load_exported, network_of
    from sb3_distill.teachers.kinds import count_acting_parameters

    th.set_num_threads(1)
    suite = DeploymentSuite()
    teacher = suite.load_teacher(env_id, zoo_dir)
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    spec = {"teacher_returns": list(teacher.reference_returns(env_id))}
    model = suite.build_model(method, env_id, env, teacher, seed, spec)
    started = time.perf_counter()
    model.learn(budget)
    train_seconds = time.perf_counter() - started
    row: dict[str, Any] = dict(env=env_id, method=method, seed=seed, budget=budget, train_seconds=train_seconds)
    row["params"] = count_acting_parameters(model)
    # The float student's network, and states it visits (another seed than the calibration's) for the agreement.
    float_network = network_of(ExportedPolicy(model.policy))
    held_out = calibration_data(float_network, env_id, None)[1]
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for name, (quantization, qad_steps) in VARIANTS.items():
            if qad_steps:
                quantization_aware_distill(model, qad_steps, quantization or "int4", learning_rate=QAD_LEARNING_RATE)
            path = export(
                model, folder / f"{name.replace(' ', '_')}.c", "c", quantize=quantization, calibration=env_id, min_agreement=0
            )
            policy = load_exported(path)
            size = cortex_m4_size(path)
            variants[name] = dict(
                returns=episode_returns(policy, env_id, episodes, 10_000 + 100 * seed),
                agreement=agreement(float_network(held_out), policy(held_out), float_network),
                flash=size.flash,
                ram=size.ram,
                text=size.text,
                rodata=size.rodata,
                stack=size.stack,
            )
        # Host latency per action, one observation per call, interleaved in this process.
        obs = np.asarray(env.reset(), dtype=np.float32)
        export(model, folder / "student.onnx", "onnx")
        export(model, folder / "student.pt", "torchscript")
        float_path = folder / "float32.c"
        c_policy = load_exported(float_path)
        batch = np.repeat(obs, 1_000, axis=0)
        callables = {
            "C (ctypes call)": c_policy,
            "ONNX Runtime": load_exported(folder / "student.onnx"),
            "TorchScript": load_exported(folder / "student.pt"),
            "predict()": lambda o: model.predict(o, deterministic=True),
        }
        row["latency_us"] = _latency(callables, obs)
        started = time.perf_counter()
        for _ in range(20):
            c_policy(batch)
        row["latency_us"]["C (in a C loop)"] = (time.perf_counter() - started) / 20_000 * 1e6
        row["c_source_bytes"] = float_path.stat().st_size
    row["variants"] = variants
    env.close()
    return row


def deployment_sections(results: dict[str, Any]) -> list[str]:
    """
    :param results: the content of ``results.json``
    :return: the deployment tables, in markdown
    """
    import numpy as np

    rows = results.get("deployment")
    if not rows:
        return []
    teachers = results.get("teachers", {})
    lines = ["", "### Exported students: return, agreement, Cortex-M4 flash / RAM", ""]
    lines += [
        "Normalized return of the exported C itself (1.0 = the teacher, 0 = random; mean over seeds of the mean over "
        "episodes), the fraction of held-out visited states where the quantized student takes the float student's "
        "action, flash (text + rodata + data) and RAM (data + bss + the entry point's stack) in bytes for a Cortex-M4F "
        "(`arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -Os`, linked alone).",
        "",
    ]
    header = [
        "env",
        "student",
        "params",
        *(f"{v} return / agreement" for v in VARIANTS),
        "flash float32 / int8 (B)",
        "RAM int8 (B)",
    ]
    body = []
    for env_id in [env for env in DeploymentSuite.envs if any(row["env"] == env for row in rows)]:
        references = teachers.get(env_id, {})
        bounds = (references.get("random_return"), references.get("reference_return", references.get("teacher_return")))
        for method, label in STUDENTS.items():
            cell_rows = [row for row in rows if row["env"] == env_id and row["method"] == method]
            if not cell_rows:
                continue
            cells = [env_id, label, f"{cell_rows[0]['params']:,}"]
            for variant in VARIANTS:
                scores = [
                    normalized(float(np.mean(row["variants"][variant]["returns"])), bounds)
                    if None not in bounds
                    else float(np.mean(row["variants"][variant]["returns"]))
                    for row in cell_rows
                ]
                agree = f"{np.mean([row['variants'][variant]['agreement'] for row in cell_rows]):.3f}"
                cells.append(f"{np.mean(scores):.2f} / {agree}")
            first = cell_rows[0]["variants"]
            cells += [f"{first['float32']['flash']:,} / {first['int8']['flash']:,}", f"{first['int8']['ram']:,}"]
            body.append(cells)
    lines += table(header, body)
    lines += ["", "### Host latency per action (µs, one observation per call, interleaved in one process)", ""]
    names = list(rows[0]["latency_us"])
    lines += table(
        ["env", "student", *names],
        [
            [row["env"], STUDENTS[row["method"]], *(f"{row['latency_us'][name]:.1f}" for name in names)]
            for env_id in DeploymentSuite.envs
            for row in rows
            if row["seed"] == 0 and row["env"] == env_id
        ],
    )
    return lines


SUITE = DeploymentSuite()
