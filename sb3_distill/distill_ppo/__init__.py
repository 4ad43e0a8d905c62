from sb3_distill.distill_ppo.buffers import (
    TeacherDictRolloutBuffer,
    TeacherRolloutBuffer,
    TeacherRolloutBufferSamples,
    TeacherRolloutMixin,
)
from sb3_distill.common.distill_coef import parse_distill_coef
from sb3_distill.distill_ppo.distill_ppo import DistillPPO
from sb3_distill.common.actor_critic import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = [
    "CnnPolicy",
    "DistillPPO",
    "MlpPolicy",
    "MultiInputPolicy",
    "TeacherDictRolloutBuffer",
    "TeacherRolloutBuffer",
    "TeacherRolloutBufferSamples",
    "TeacherRolloutMixin",
    "parse_distill_coef",
]
