"""
Rollout buffers of DistillPPO: SB3's, plus the teacher's observations and each sample's index in the rollout.

They live with the replay buffers of the other algorithms in :mod:`sb3_distill.common.buffers` (one seam for what
the teacher sees); this module keeps their import path.
"""

from sb3_distill.common.buffers import (
    TeacherDictRolloutBuffer,
    TeacherRolloutBuffer,
    TeacherRolloutBufferSamples,
    TeacherRolloutMixin,
)

__all__ = ["TeacherDictRolloutBuffer", "TeacherRolloutBuffer", "TeacherRolloutBufferSamples", "TeacherRolloutMixin"]
