from sb3_distill.teachers.kinds import (
    PolicyKind,
    acting_network,
    count_acting_parameters,
    count_critic_parameters,
    count_parameters,
    policy_kind,
)
from sb3_distill.teachers.loading import (
    BUNDLED_DIR,
    check_teacher_spaces,
    copy_policy,
    load_policy_file,
    load_teacher,
    load_vec_normalize,
)
from sb3_distill.teachers.teacher import Teacher, reference_returns

__all__ = [
    "BUNDLED_DIR",
    "PolicyKind",
    "Teacher",
    "acting_network",
    "check_teacher_spaces",
    "copy_policy",
    "count_acting_parameters",
    "count_critic_parameters",
    "count_parameters",
    "load_policy_file",
    "load_teacher",
    "load_vec_normalize",
    "policy_kind",
    "reference_returns",
]
