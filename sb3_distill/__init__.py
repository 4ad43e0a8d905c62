import os

from sb3_distill.teachers import Teacher, load_teacher

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()


def __getattr__(name: str):
    # The algorithms import SB3's heavy modules; keep `import sb3_distill` light until they are used.
    if name == "DistillDQN":
        from sb3_distill.distill_dqn import DistillDQN

        return DistillDQN
    if name == "DistillPPO":
        from sb3_distill.distill_ppo import DistillPPO

        return DistillPPO
    if name == "PolicyDistill":
        from sb3_distill.policy_distill import PolicyDistill

        return PolicyDistill
    raise AttributeError(f"module 'sb3_distill' has no attribute {name!r}")


__all__ = ["DistillDQN", "DistillPPO", "PolicyDistill", "Teacher", "__version__", "load_teacher"]
