"""Compatibility home of the batch engine's public names, as README and 0.1.0 import them; the
engine is :mod:`jkspnet.engines.batch` and the planning :mod:`jkspnet.engines.plan`."""

from .engines.batch import BatchOptions, BatchResult, FileOutcome, Job, colorize_files, jobs_to_do
from .engines.plan import PlanError, plan_outputs

__all__ = [
    "BatchOptions",
    "BatchResult",
    "FileOutcome",
    "Job",
    "PlanError",
    "colorize_files",
    "jobs_to_do",
    "plan_outputs",
]
