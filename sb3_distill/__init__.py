import os

from sb3_distill.distill_dqn import DistillDQN
from sb3_distill.distill_ppo import DistillPPO
from sb3_distill.policy_distill import PolicyDistill
from sb3_distill.teachers import Teacher, load_teacher

with open(os.path.join(os.path.dirname(__file__), "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

__all__ = ["DistillDQN", "DistillPPO", "PolicyDistill", "Teacher", "__version__", "load_teacher"]
