"""scripts/benchmark.py: its pieces, and the CLI end to end with tiny budgets (fresh processes, as in a real run)."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))  # spawned benchmark workers inherit sys.path and import the script by name
benchmark = importlib.import_module("benchmark")


def test_zoo_hyperparameters_come_from_rl_zoo3() -> None:
    import rl_zoo3

    with open(Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml") as file:
        zoo = yaml.safe_load(file)["LunarLander-v3"]
    hyperparams, n_timesteps = benchmark.zoo_dqn_hyperparams("LunarLander-v3")
    assert n_timesteps == int(float(zoo["n_timesteps"]))
    assert hyperparams["policy_kwargs"] == eval(zoo["policy_kwargs"])
    assert hyperparams["learning_rate"](1.0) == pytest.approx(float(zoo["learning_rate"]))
    for key in ("batch_size", "buffer_size", "gamma", "train_freq", "gradient_steps", "target_update_interval"):
        assert hyperparams[key] == zoo[key]
    student = benchmark.student_hyperparams("LunarLander-v3")
    assert (student["buffer_size"], student["policy_kwargs"]) == (zoo["buffer_size"], {"net_arch": [32, 32]})


def test_grid_scores_and_iqm() -> None:
    grid = benchmark.eval_grid(27_000)
    assert grid[:3] == [500, 1000, 1500] and grid[-2:] == [25_000, 27_000] and grid == sorted(set(grid))
    assert benchmark.eval_grid(3_200)[-1] == 3_200
    assert benchmark.normalized(300.0, (100.0, 500.0)) == pytest.approx(0.5)
    assert benchmark.normalized(-166.0, (-200.0, -166.0)) == pytest.approx(1.0)
    assert benchmark.iqm([0.0, 1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.0)  # 25% trimmed from each end
    assert benchmark.iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)


def _row(method: str, seed: int, scores: list[float], params: int = 1_000) -> dict:
    curve = [
        dict(step=step, normalized_score=score, train_seconds=step / 1000, mean_return=score)
        for step, score in zip([500, 1000, 1500], scores, strict=True)
    ]
    row = dict(
        env="CartPole-v1", method=method, seed=seed, budget=1500, curve=curve, params=params, params_ratio=params / 10_000
    )
    for level in benchmark.LEVELS:
        reached = next((r for r in curve if r["normalized_score"] >= level), None)
        row[f"steps_to_{level}"] = reached and reached["step"]
        row[f"train_seconds_to_{level}"] = reached and reached["train_seconds"]
    row.update(final_normalized_score=scores[-1], latency_s={"predict": 1e-4}, peak_rss_mb=300.0, grad_step_ratio=1.1)
    row["train_seconds"] = curve[-1]["train_seconds"]
    return row


def test_summary_uses_the_mean_curve_and_dqn_as_reference() -> None:
    rows = [
        _row("dqn", 0, [0.2, 0.5, 1.0], 10_000),
        _row("distill_dqn:qdagger", 0, [0.95, 1.0, 1.0]),
        _row("distill_dqn:qdagger", 1, [0.5, 0.8, 0.9]),
    ]
    teachers = {"CartPole-v1": {"latency_s": {"predict": 2e-4}}}
    summary = {s["method"]: s for s in benchmark.summarize(rows, teachers)}
    qdagger = summary["distill_dqn:qdagger"]
    assert qdagger["mean_curve"] == pytest.approx([0.725, 0.9, 0.95])
    assert (qdagger["steps_to_0.9"], qdagger["steps_to_1.0"], qdagger["seeds_reaching_1.0"]) == (1000, None, 1)
    assert qdagger["final_score_mean"] == pytest.approx(0.95) and qdagger["latency_predict_ratio"] == pytest.approx(0.5)
    assert qdagger["steps_ratio_vs_dqn"] is None  # the mean over seeds never reaches 1.0
    assert summary["dqn"]["steps_to_1.0"] == 1500 and summary["dqn"]["steps_ratio_vs_dqn"] == pytest.approx(1.0)
    assert qdagger["median_seed_steps_to_1.0"] == 1000 and qdagger["median_seed_steps_ratio_vs_dqn"] == pytest.approx(
        1000 / 1500
    )


def test_dqn_that_never_gets_there_gives_an_upper_bound() -> None:
    rows = [_row("dqn", 0, [0.1, 0.2, 0.5], 10_000), _row("distill_dqn:policy_distillation", 0, [0.5, 1.0, 1.0])]
    summary = {s["method"]: s for s in benchmark.summarize(rows, {"CartPole-v1": {"latency_s": {}}})}
    student = summary["distill_dqn:policy_distillation"]
    assert student["steps_ratio_vs_dqn"] == pytest.approx(1000 / 1500) and student["steps_ratio_vs_dqn_is_upper_bound"]
    assert student["wall_time_ratio_vs_dqn"] == pytest.approx(1.0 / 1.5) and student["wall_time_ratio_vs_dqn_is_upper_bound"]
    assert benchmark._bounded(student, "steps_ratio_vs_dqn", "{:.1%}") == "<66.7%"


def test_gradient_step_times_same_process() -> None:
    from stable_baselines3.common.logger import configure

    from sb3_distill import DistillDQN

    model = DistillDQN(
        "MlpPolicy", "CartPole-v1", teacher="dqn/CartPole-v1", learning_starts=100, buffer_size=1_000, batch_size=32, seed=0
    )
    model.learn(300)
    model.set_logger(configure(None, []))
    plain = benchmark.make_logger_free_dqn(model, model.env, 0)
    assert np.array_equal(plain.replay_buffer.observations, model.replay_buffer.observations)
    times = benchmark.gradient_step_times({"student": model, "dqn": plain}, n_steps=25)
    assert set(times) == {"student", "dqn"} and all(0 < value < 1 for value in times.values())
    assert model.replay_buffer.size() == 300 + 30  # one transition per timed step (5 blocks + warm-up)


def test_cli_tiny_run(tmp_path: Path) -> None:
    args = [
        "--out", str(tmp_path), "--quick", "--envs", "CartPole-v1", "--methods", "dqn", "distill_dqn:policy_distillation",
        "--budget-scale", "0.1", "--eval-episodes", "2", "--grad-steps", "10", "--no-profile", "--jobs", "2",
    ]  # fmt: skip
    assert benchmark.main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert {(row["method"], row["seed"]) for row in results["rows"]} == {("dqn", 0), ("distill_dqn:policy_distillation", 0)}
    for row in results["rows"]:
        for key in ("env", "method", "seed", "steps_to_teacher_level", "final_normalized_score", "params_ratio"):
            assert key in row
        assert row["curve"][-1]["step"] == row["budget"] and row["peak_rss_mb"] > 50
    student = next(row for row in results["rows"] if row["method"] != "dqn")
    assert student["params_ratio"] < 0.05 and student["grad_step_ratio"] > 0
    assert {s["method"] for s in results["summary"]} == {"dqn", "distill_dqn:policy_distillation"}
    teacher = results["teachers"]["CartPole-v1"]
    assert teacher["teacher_return"] > teacher["random_return"] and teacher["n_episodes"] == 30
    assert "| CartPole-v1 |" in (tmp_path / "benchmarks.md").read_text()
    assert (tmp_path / "benchmark.png").stat().st_size > 10_000
    assert benchmark.main(args) == 2  # refuses to overwrite without --force
