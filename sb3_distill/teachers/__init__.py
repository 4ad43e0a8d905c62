from sb3_distill.teachers.loading import BUNDLED_DIR, check_teacher_spaces, load_policy_file, load_teacher
from sb3_distill.teachers.teacher import Teacher, count_parameters

__all__ = ["BUNDLED_DIR", "Teacher", "check_teacher_spaces", "count_parameters", "load_policy_file", "load_teacher"]
