"""Jobs handed to spawned processes through a file, not through the spawn pipe.

``spawn`` writes a new process's arguments into a pipe that the child reads only after it has
imported the parent's main module. A child that dies during that import (a script without a
main guard) never reads them, and a parent writing more than the pipe holds (recordings,
images: megabytes) then blocks for ever. A file path keeps the pipe's load small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle

# what a caller adds to its error when a spawned process died before its job ran
MAIN_GUARD_HINT = ("each spawned process first imports the caller's main module: a script that "
                   "trains needs its work under `if __name__ == \"__main__\":`")


def write_job(folder: str | Path, job: Any) -> str:
    """``job`` cloudpickled into ``folder/job.pkl`` (a ``tempfile.TemporaryDirectory``: only
    this user can read it); returns the path for :func:`read_job`."""
    path = Path(folder) / "job.pkl"
    path.write_bytes(cloudpickle.dumps(job))
    return str(path)


def read_job(path: str) -> Any:
    """The job :func:`write_job` wrote to ``path`` (in the spawned process)."""
    return cloudpickle.loads(Path(path).read_bytes())
