"""
Types of sampled batches.

What the teacher sees of a replay or rollout sample is kept by the buffers at insertion time
(:mod:`sb3_distill.common.buffers`, :mod:`sb3_distill.common.teacher_observations`).
"""

from sb3_distill.common.teacher_observations import Obs

__all__ = ["Obs"]
