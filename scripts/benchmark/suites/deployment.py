"""
Students on the device: the classic students (DistillDQN's default, PolicyDistill and DistillPPO, ``[32, 32]``; the
bundled DQN teachers) and the MuJoCo suite's 5% student of the zoo's SAC HalfCheetah teacher, each exported to C as
float32, int8, 4 bits after training, and 4 bits after quantization-aware distillation. Per cell: the
teacher-normalized return of the exported C itself (compiled for this machine), the action agreement with the float
student, flash and RAM on a Cortex-M4 (``arm-none-eabi-gcc -Os``), and the host latency per action of C (looped in C,
and one Python call through ctypes), ONNX Runtime, TorchScript and SB3 ``predict()``, interleaved in one process.

The work is in the suite's probes: run it with ``--probes-only``. HalfCheetah needs ``--zoo-dir`` (an rl-zoo3 folder
with ``sac/HalfCheetah-v3_N``); the classic teachers are always the bundled ones::

    python -m scripts.benchmark --suite deployment --probes-only --jobs 1 --zoo-dir ZOO --out runs/deployment
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..report import table
from ..stats import normalized
from ..suite import Job, Suite
from .classic import STUDENT_NET_ARCH
from .classic import SUITE as CLASSIC
from .mujoco import SUITE as MUJOCO

#: The classic students (classic-suite method names, and DistillPPO) and the MuJoCo suite's 5% student, with labels
CLASSIC_STUDENTS = {
    "distill_dqn:policy_distillation": "DistillDQN (default)",
    "policy_distill": "PolicyDistill",
    "distill_ppo": "DistillPPO",
}
MUJOCO_STUDENTS = {"policy_distill:5%": "PolicyDistill 5% (MuJoCo suite)"}
MUJOCO_ENVS = ("HalfCheetah-v5",)
#: Exported variants: name → (quantization, with quantization-aware distillation)
VARIANTS = {"float32": (None, False), "int8": ("int8", False), "int4": ("int4", False), "int4 QAD": ("int4", True)}
#: Quantization-aware distillation: env steps (at least one PPO rollout) and learning rate (a tenth of the
#: off-policy students' 1e-3, as fine-tuning)
QAD_STEPS, QAD_LEARNING_RATE = 1_000, 1e-4
#: Env steps of each student. DistillDQN / PolicyDistill: the classic suite's ``--quick`` budgets (its students reach
#: 0.8–1.0 of the teacher there; the deployment targets are relative to the float student). DistillPPO: rl-zoo3's PPO
#: settings, more env steps (on-policy). HalfCheetah: the MuJoCo suite's budget (2% of the teacher's).
BUDGETS = {
    mode: {
        **{
            env_id: {"dqn": CLASSIC.budgets["quick"][env_id], "ppo": ppo // (2 if mode == "quick" else 1)}
            for env_id, ppo in zip(CLASSIC.envs, (10_000, 20_000, 50_000, 100_000), strict=True)
        },
        "HalfCheetah-v5": {"mujoco": MUJOCO.budgets[mode]["HalfCheetah-v5"]},
    }
    for mode in ("full", "quick")
}
#: Targets of issue 18 (classic / HalfCheetah): int8 return as a share of the float student's; flash in bytes
INT8_RETURN, INT8_RETURN_MUJOCO, QAD_RETURN = 0.99, 0.97, 0.95
FLASH_CLASSIC, RAM_CLASSIC, FLASH_MUJOCO, SPEEDUP = 2048, 512, 8192, 10.0
#: Ratios to the float student are reported only where it scores at least this (normalized)
MIN_FLOAT_SCORE = 0.2
PLOT = "deployment.png"


def family(method: str) -> str:
    """
    :param method: a student method
    :return: ``"dqn"`` (off-policy classic students), ``"ppo"`` or ``"mujoco"``: which budget it takes
    """
    return "mujoco" if method in MUJOCO_STUDENTS else ("ppo" if method == "distill_ppo" else "dqn")


def applies(env_id: str, method: str) -> bool:
    """
    :param env_id: gymnasium id
    :param method: a student method
    :return: whether the suite runs ``method`` on ``env_id`` (classic students on classic envs, MuJoCo on MuJoCo)
    """
    return (env_id in MUJOCO_ENVS) == (method in MUJOCO_STUDENTS)


class DeploymentSuite(Suite):
    name = "deployment"
    description = (
        "classic students (DistillDQN, PolicyDistill, DistillPPO) and the HalfCheetah 5% student → C (float32, int8, "
        "int4, int4 after quantization-aware distillation) on a Cortex-M4"
    )
    envs = (*CLASSIC.envs, *MUJOCO_ENVS)
    teachers = {**CLASSIC.teachers, **{env_id: MUJOCO.teachers[env_id] for env_id in MUJOCO_ENVS}}
    methods = {**CLASSIC_STUDENTS, **MUJOCO_STUDENTS}
    budgets = BUDGETS
    seeds = (5, 1)
    learning_columns = ("params", "seeds", "final")
    plot_file = PLOT

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--mujoco-seeds", type=int, default=1, help="seeds of the HalfCheetah student (default 1)")
        parser.add_argument(
            "--mujoco-episodes", type=int, default=10, help="HalfCheetah episodes per exported variant (default 10)"
        )

    def n_seeds(self, method: str, args: argparse.Namespace) -> int:
        return args.mujoco_seeds if method in MUJOCO_STUDENTS else super().n_seeds(method, args)

    def budget(self, env_id: str, method: str, args: argparse.Namespace) -> int:
        if not applies(env_id, method):
            return 0
        steps = self.budgets["quick" if args.quick else "full"][env_id][family(method)]  # type: ignore[index]
        return max(int(steps * args.budget_scale), 200)

    def teacher_runs(self, env_id: str, zoo_dir: str | None, all_teachers: bool = False) -> list[Path]:
        # The classic students learn from the bundled teachers (the classic suite's); HalfCheetah's is --zoo-dir's.
        return super().teacher_runs(env_id, zoo_dir if env_id in MUJOCO_ENVS else None, all_teachers)

    def check(self, args: argparse.Namespace) -> None:
        if any(env_id in MUJOCO_ENVS for env_id in args.envs):
            MUJOCO.check(argparse.Namespace(**{**vars(args), "envs": [e for e in args.envs if e in MUJOCO_ENVS]}))
        super().check(args)

    def make_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        return MUJOCO.make_env(env_id, teacher, seed) if env_id in MUJOCO_ENVS else super().make_env(env_id, teacher, seed)

    def make_eval_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        if env_id in MUJOCO_ENVS:
            return MUJOCO.make_eval_env(env_id, teacher, seed)
        return super().make_eval_env(env_id, teacher, seed)

    def make_reference_env(self, env_id: str, teacher: Any, seed: int) -> Any:
        if env_id in MUJOCO_ENVS:
            return MUJOCO.make_reference_env(env_id, teacher, seed)
        return super().make_reference_env(env_id, teacher, seed)

    def student_env(self, method: str, env_id: str, teacher: Any, seed: int) -> Any:
        """
        :param method: a student method
        :param env_id: gymnasium id
        :param teacher: the teacher
        :param seed: seed
        :return: the student's training env: DistillPPO's as rl-zoo3 sets PPO's (its number of envs, VecNormalize
            where the zoo normalizes), the others' as their suites build it
        """
        if method != "distill_ppo":
            return self.make_env(env_id, teacher, seed)
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize

        from ..zoo_config import zoo_config

        config = zoo_config("ppo", env_id)
        env = make_vec_env(env_id, n_envs=config.n_envs, seed=seed)
        return VecNormalize(env) if config.normalize else env

    def build_model(self, method: str, env_id: str, env: Any, teacher: Any, seed: int, spec: dict[str, Any]) -> Any:
        if method in MUJOCO_STUDENTS:
            return MUJOCO.build_model(method, env_id, env, teacher, seed, spec)
        if method != "distill_ppo":
            return CLASSIC.build_model(method, env_id, env, teacher, seed, spec)
        from sb3_distill import DistillPPO

        from ..zoo_config import zoo_config

        settings = zoo_config("ppo", env_id).hyperparams
        settings.pop("policy", None)
        return DistillPPO(
            "MlpPolicy",
            env,
            teacher=teacher,
            reference_returns=tuple(spec["teacher_returns"]),
            policy_kwargs=dict(net_arch=list(STUDENT_NET_ARCH)),
            seed=seed,
            device="cpu",
            **settings,
        )

    def extra_jobs(self, settings: dict[str, Any], zoo_dir: str, args: argparse.Namespace) -> list[Job]:
        episodes = args.eval_episodes or (10 if args.quick else 30)
        mujoco_episodes = min(args.mujoco_episodes, 2) if args.quick else args.mujoco_episodes
        return [
            Job(
                deployment_job,
                (
                    env_id,
                    method,
                    seed,
                    settings["budgets"][env_id][method],
                    zoo_dir,
                    mujoco_episodes if env_id in MUJOCO_ENVS else episodes,
                ),
                f"deployment {env_id} {method} seed {seed}",
                "deployment",
                weight=settings["budgets"][env_id][method],
                seed=seed,
            )
            for env_id in args.envs
            for method in args.methods
            if applies(env_id, method)
            for seed in range(settings["seeds"][method])
        ]

    def report_sections(self, results: dict[str, Any]) -> list[str]:
        return deployment_sections(results)

    def extra_plots(self, results: dict[str, Any], out: Path) -> None:
        deployment_plot(results, out / PLOT)


def episode_returns(policy: Any, env_id: str, episodes: int, seed: int) -> list[float]:
    """
    :param policy: an exported policy (``load_exported``: a batch of raw observations -> actions, scores)
    :param env_id: gymnasium id (discrete or continuous actions)
    :param episodes: how many episodes
    :param seed: episode i is reset with ``seed + i``
    :return: the return of each episode
    """
    import gymnasium as gym

    env = gym.make(env_id)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = policy(obs[None])
            obs, reward, terminated, truncated, _ = env.step(int(action[0]) if discrete else action[0])
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def interleaved_latency(runs: dict[str, Any], actions: int, rounds: int = 30) -> dict[str, float]:
    """
    :param runs: name → a function of no argument that computes ``actions`` actions
    :param actions: actions per call of each function
    :param rounds: rounds; each round calls every function once, in turn
    :return: name → median over rounds of µs per action
    """
    import numpy as np

    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - started) / actions * 1e6)
    return {name: float(np.median(values)) for name, values in samples.items()}


def deployment_job(env_id: str, method: str, seed: int, budget: int, zoo_dir: str, episodes: int) -> dict[str, Any]:
    """
    Train one student, export it four ways and measure each (run in a worker process).

    :param env_id: gymnasium id
    :param method: a student method of the suite
    :param seed: seed of the student
    :param budget: its env steps
    :param zoo_dir: the teachers' snapshot
    :param episodes: evaluation episodes of each exported variant
    :return: the measurements
    """
    import tempfile

    from sb3_distill.device import cortex_m4_size
    from sb3_distill.device.qat import quantization_aware_distill
    from sb3_distill.device.quantize import agreement
    from sb3_distill.export import ExportedPolicy, calibration_data, export, load_exported, network_of
    from sb3_distill.teachers.kinds import count_acting_parameters

    from ..runners import setup_worker

    setup_worker()
    suite = DeploymentSuite()
    teacher = suite.load_teacher(env_id, zoo_dir)
    env = suite.student_env(method, env_id, teacher, seed)
    spec = {} if env_id in MUJOCO_ENVS else {"teacher_returns": list(teacher.reference_returns(env_id))}
    model = suite.build_model(method, env_id, env, teacher, seed, spec)
    started = time.perf_counter()
    model.learn(budget)
    row: dict[str, Any] = dict(env=env_id, method=method, seed=seed, budget=budget)
    row["train_seconds"] = time.perf_counter() - started
    row["params"] = count_acting_parameters(model)
    # The float student's network, and states it visits (another seed than the calibration's) for the agreement.
    float_network = network_of(ExportedPolicy(model.policy, model.get_vec_normalize_env()))
    calibration, held_out = calibration_data(float_network, env_id, None)
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for name, (quantization, qad) in VARIANTS.items():
            if qad:
                started = time.perf_counter()
                # At least one PPO rollout (learn() collects whole rollouts).
                steps = max(QAD_STEPS, getattr(model, "n_steps", 0) * env.num_envs)
                quantization_aware_distill(model, steps, quantization or "int4", learning_rate=QAD_LEARNING_RATE)
                row["qad_steps"], row["qad_seconds"] = steps, time.perf_counter() - started
            path = export(
                model,
                folder / f"{name.replace(' ', '_')}.c",
                "c",
                quantize=quantization,
                calibration=calibration,
                min_agreement=0,
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
        row["variants"] = variants
        if seed == 0:  # the latency table shows seed 0 (a forward pass does not depend on the weights)
            row["latency_us"] = latency_probe(model, folder, held_out[:200])
    env.close()
    return row


def latency_probe(model: Any, folder: Path, obs: Any) -> dict[str, float]:
    """
    Host latency per action, interleaved round by round in this process: the exported C looped in C (one call of a C
    loop over the observations: what the device pays, on this CPU) and called once per observation from Python
    (through ctypes), ONNX Runtime's and TorchScript's single-observation calls, SB3's ``predict()``.

    :param model: the student (its ``float32.c`` and ``int8.c`` exports are in ``folder``)
    :param folder: the export folder
    :param obs: distinct visited raw observations, one action each per round
    :return: name → median µs per action
    """
    import numpy as np

    from sb3_distill.export import export, load_exported

    export(model, folder / "student.onnx", "onnx")
    export(model, folder / "student.pt", "torchscript")
    c_float, c_int8 = load_exported(folder / "float32.c"), load_exported(folder / "int8.c")
    onnx, torchscript = load_exported(folder / "student.onnx"), load_exported(folder / "student.pt")
    singles = [obs[i : i + 1] for i in range(len(obs))]
    vec_normalize = model.get_vec_normalize_env()

    def each(function: Any) -> Any:
        def run() -> None:
            for single in singles:
                function(single)

        return run

    def predict(single: Any) -> Any:
        return model.predict(vec_normalize.normalize_obs(single) if vec_normalize else single, deterministic=True)

    # The same entry point through ctypes alone: addresses computed beforehand, outputs preallocated (no numpy work).
    library_call, info = c_float.library.sb3_distill_batch, c_float.info
    flat = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
    addresses = [flat[i].ctypes.data for i in range(len(flat))]
    action, scores = np.empty(info.action_dim + 1, dtype=np.float32), np.empty(info.n_scores, dtype=np.float32)

    def bare() -> None:
        for address in addresses:
            library_call(1, address, action.ctypes.data, scores.ctypes.data)

    runs = {
        "C float32, looped in C": lambda: c_float(obs),
        "C int8, looped in C": lambda: c_int8(obs),
        "C float32, bare ctypes call": bare,
        "C float32, one ctypes call": each(c_float),
        "ONNX Runtime": each(onnx),
        "TorchScript": each(torchscript),
        "predict()": each(predict),
    }
    return interleaved_latency(runs, len(obs))


# ------------------------------------------------------------------------------------------------ report
def _cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per env × student: its rows, the teacher's bounds, mean normalized return per variant."""
    import numpy as np

    rows = results.get("deployment") or []
    teachers = results.get("teachers", {})
    cells = []
    for env_id in [env for env in DeploymentSuite.envs if any(row["env"] == env for row in rows)]:
        references = teachers.get(env_id, {})
        bounds = (references.get("random_return"), references.get("reference_return", references.get("teacher_return")))
        for method, label in DeploymentSuite.methods.items():
            mine = sorted((row for row in rows if row["env"] == env_id and row["method"] == method), key=lambda r: r["seed"])
            if not mine:
                continue
            scores = {
                variant: [
                    normalized(float(np.mean(row["variants"][variant]["returns"])), bounds)
                    if None not in bounds
                    else float(np.mean(row["variants"][variant]["returns"]))
                    for row in mine
                ]
                for variant in VARIANTS
            }
            cells.append(dict(env=env_id, method=method, label=label, rows=mine, scores=scores))
    return cells


def deployment_sections(results: dict[str, Any]) -> list[str]:
    """
    :param results: the content of ``results.json``
    :return: the deployment tables, in markdown
    """
    import numpy as np

    cells = _cells(results)
    if not cells:
        return []
    lines = ["", "### Exported students: return, agreement, Cortex-M4 flash / RAM", ""]
    lines += [
        "Normalized return of the exported C itself (1.0 = the teacher, 0 = random; mean ± std over seeds of the mean "
        "over episodes), the fraction of held-out visited states where the variant takes the float student's action "
        "(within 5% of the action range for HalfCheetah), flash (text + rodata + data) and RAM (data + bss + the entry "
        "point's stack) in bytes for a Cortex-M4F (`arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -Os`, "
        f"linked alone). Plot: `{PLOT}`.",
        "",
    ]
    header = ["env", "student", "acting params", "seeds × episodes", *(f"{v} return / agreement" for v in VARIANTS)]
    header += ["flash float32 / int8 / int4 (B)", "RAM int8 (B)"]
    body = []
    for cell in cells:
        first = cell["rows"][0]
        row = [
            cell["env"],
            cell["label"],
            f"{first['params']:,}",
            f"{len(cell['rows'])} × {len(first['variants']['float32']['returns'])}",
        ]
        for variant in VARIANTS:
            scores = cell["scores"][variant]
            agree = np.mean([r["variants"][variant]["agreement"] for r in cell["rows"]])
            spread = f" ± {np.std(scores):.2f}" if len(scores) > 1 else ""
            row.append(f"{np.mean(scores):.2f}{spread} / {agree:.3f}")
        flash = " / ".join(f"{first['variants'][v]['flash']:,}" for v in ("float32", "int8", "int4"))
        row += [flash, f"{first['variants']['int8']['ram']:,}"]
        body.append(row)
    lines += table(header, body)
    lines += ["", "### Targets per cell", ""]
    lines += [
        "Ratios of mean normalized returns (variant / float32, over the same seeds and episodes); targets: int8 ≥ "
        f"{INT8_RETURN} of float ({INT8_RETURN_MUJOCO} on HalfCheetah), int4 after quantization-aware distillation ≥ "
        f"{QAD_RETURN}, int8 flash ≤ {FLASH_CLASSIC:,} B and RAM ≤ {RAM_CLASSIC} B (classic), ≤ {FLASH_MUJOCO:,} B "
        "(HalfCheetah 5%).",
        "",
    ]
    body = []
    for cell in cells:
        mujoco = cell["env"] in MUJOCO_ENVS
        base = float(np.mean(cell["scores"]["float32"]))
        int8, ptq, qad = (float(np.mean(cell["scores"][v])) / base for v in ("int8", "int4", "int4 QAD"))
        first = cell["rows"][0]["variants"]["int8"]
        flash_ok = first["flash"] <= (FLASH_MUJOCO if mujoco else FLASH_CLASSIC)
        ram_ok = mujoco or first["ram"] <= RAM_CLASSIC
        if base < MIN_FLOAT_SCORE:  # a ratio to a student that does not act is no measurement
            int8_cell = ptq_cell = qad_cell = f"– (float32 at {base:.2f})"
        else:
            int8_cell = f"{int8:.3f} ({'met' if int8 >= (INT8_RETURN_MUJOCO if mujoco else INT8_RETURN) else '**missed**'})"
            ptq_cell, qad_cell = f"{ptq:.2f}", f"{qad:.2f} ({'met' if qad >= QAD_RETURN else '**missed**'})"
        flash_cell = f"{first['flash']:,} / {first['ram']:,} ({'met' if flash_ok and ram_ok else '**missed**'})"
        body.append([cell["env"], cell["label"], int8_cell, flash_cell, ptq_cell, qad_cell])
    header = ["env", "student", "int8 / float32", "int8 flash / RAM (B)", "int4 post-training / float32"]
    lines += table([*header, "int4 QAD / float32"], body)
    lines += ["", "### Host latency per action (µs; interleaved in one process, median of 30 rounds)", ""]
    rows = [row for cell in cells for row in cell["rows"] if row["seed"] == 0 and "latency_us" in row]
    if rows:
        names = list(rows[0]["latency_us"])
        lines += [
            "Each round times every column once on the same 200 visited observations. *Looped in C*: one ctypes call "
            "of a C loop that calls `NAME_act` once per observation (the cost the device's own loop pays, on this "
            "CPU); *one ctypes call*: one Python call per observation (`load_exported`'s policy: numpy conversions "
            "and the ctypes call around the same C; its difference to the float32 loop is what Python adds; *bare "
            "ctypes call*: the ctypes call alone, addresses and outputs prepared beforehand); "
            "ONNX Runtime, TorchScript and `predict()`: one call per observation.",
            "",
        ]
        body = []
        for row in rows:
            latency = row["latency_us"]
            onnx = latency["ONNX Runtime"]
            body.append(
                [
                    row["env"],
                    DeploymentSuite.methods[row["method"]],
                    *(f"{latency[name]:,.2f}" for name in names),
                    f"{onnx / latency['C float32, looped in C']:.0f}× / {onnx / latency['C int8, looped in C']:.0f}×",
                    f"{onnx / latency['C float32, one ctypes call']:.1f}×",
                ]
            )
        lines += table(["env", "student", *names, "ONNX / C looped (float32 / int8)", "ONNX / C one ctypes call"], body)
    return lines


def deployment_plot(results: dict[str, Any], path: Path) -> None:
    """
    Normalized return of the exported C against its Cortex-M4 flash, per precision: one panel per student kind, a
    line per env from float32 to int8, int4 and int4 after quantization-aware distillation.

    :param results: the content of ``results.json``
    :param path: the PNG to write
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = _cells(results)
    if not cells:
        return
    kinds = [method for method in DeploymentSuite.methods if any(cell["method"] == method for cell in cells)]
    figure, axes = plt.subplots(1, len(kinds), figsize=(3.6 * len(kinds), 3.8), sharey=True, squeeze=False)
    markers = dict(zip(VARIANTS, ("o", "s", "v", "*"), strict=True))
    colors = dict(zip(DeploymentSuite.envs, plt.get_cmap("tab10").colors, strict=False))
    for axis, method in zip(axes[0], kinds, strict=True):
        for cell in (cell for cell in cells if cell["method"] == method):
            flash = [cell["rows"][0]["variants"][v]["flash"] for v in VARIANTS]
            score = [float(np.mean(cell["scores"][v])) for v in VARIANTS]
            axis.plot(
                flash,
                score,
                color=colors[cell["env"]],
                linewidth=1,
                alpha=0.6,
                label=f"{cell['env']} ({len(cell['rows'])} seeds)",
            )
            for variant, x, y in zip(VARIANTS, flash, score, strict=True):
                axis.scatter(
                    [x], [y], marker=markers[variant], color=colors[cell["env"]], s=45 if variant != "int4 QAD" else 90
                )
        axis.axvline(FLASH_MUJOCO if method in MUJOCO_STUDENTS else FLASH_CLASSIC, color="grey", linestyle=":", linewidth=1)
        axis.set_xscale("log")
        axis.set_title(DeploymentSuite.methods[method], fontsize=9)
        axis.set_xlabel("Cortex-M4 flash (bytes)")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7, loc="lower right")
    for variant, marker in markers.items():
        axes[0][0].scatter([], [], marker=marker, color="black", label=variant)
    axes[0][0].legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("teacher-normalized return of the exported C")
    figure.suptitle(
        "Return vs flash per precision (o float32, ■ int8, ▼ int4, ★ int4 after QAD; dotted: flash target)", fontsize=9
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


SUITE = DeploymentSuite()
