"""Colorize an archive on a Ray cluster, resumably (``jkspnet colorize ... --ray``): the same
engine as a plain run (:mod:`jkspnet.engines.batch`) on every node.

:mod:`~jkspnet.cluster.driver` runs the show, :mod:`~jkspnet.cluster.worker` is each node's
actor, :mod:`~jkspnet.cluster.placement` sizes the pool and :mod:`~jkspnet.cluster.manifest`
records each file's outcome so a rerun resumes. Importing this package imports neither Ray nor
torch.
"""

from ..pipeline.spec import ColorizerSpec
from .driver import colorize_files, import_ray
from .manifest import MANIFEST_NAME, NAMES, Manifest, ManifestError, manifest_for
from .placement import WorkerShape, worker_shape
from .worker import TASK_RETRIES

ModelSpec = ColorizerSpec
"""What each worker loads: the :class:`~jkspnet.pipeline.spec.ColorizerSpec` (its 0.1 name)."""

__all__ = [
    "MANIFEST_NAME",
    "NAMES",
    "TASK_RETRIES",
    "ColorizerSpec",
    "Manifest",
    "ManifestError",
    "ModelSpec",
    "WorkerShape",
    "colorize_files",
    "import_ray",
    "manifest_for",
    "worker_shape",
]
