"""The frozen teacher's outputs a distiller reads: cached on disk once per fine-tuned teacher, or computed online.

:mod:`~eegkd_bench.teacher_cache.outputs` computes, stores, verifies and reads the cache;
:mod:`~eegkd_bench.teacher_cache.policy` decides whether a cell uses it, which outputs it
reads, and whether they fit the disk.
"""
from eegkd_bench.teacher_cache.outputs import (
    OnlineTeacher,
    TeacherOutputs,
    clean_scratch,
    outputs_key,
    scratch_dir,
    teacher_outputs,
    teacher_target,
)
from eegkd_bench.teacher_cache.policy import (
    CellReads,
    cache_bytes_needed,
    cache_choice,
    cache_choice_key,
    cached_output_names,
    decide_cache,
    distillation_rows,
    fit_to_disk,
    measure_teacher_cache,
    output_bytes,
    size_reads,
    teacher_output_names,
    warmup_output_names,
)

__all__ = ["CellReads", "OnlineTeacher", "TeacherOutputs", "cache_bytes_needed", "cache_choice", "cache_choice_key",
           "cached_output_names", "clean_scratch", "decide_cache", "distillation_rows", "fit_to_disk",
           "measure_teacher_cache", "output_bytes", "outputs_key", "scratch_dir", "size_reads", "teacher_output_names",
           "teacher_outputs", "teacher_target", "warmup_output_names"]
