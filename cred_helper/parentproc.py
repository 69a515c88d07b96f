"""Who ran us: the parent process as PID, start time and executable. Stdlib only.

client-go runs the plugin again in the same kubectl process when the server answers 401, so a
second request from the same parent means the credential we served was rejected. PID alone is
not enough (PIDs are reused) and neither is PID plus start time: the gcloud kubectl dispatcher
execs `kubectl.1.NN` under the same PID and start time after its own run of the plugin, and
that second run is not a 401. The executable tells them apart.
"""

from __future__ import annotations

import os


def parent_identity() -> str:
    ppid = os.getppid()
    start = exe = ""
    try:
        with open(f"/proc/{ppid}/stat", "rb") as fh:
            # Field 22 is the start time; count from after the last ')' since the
            # command name (field 2) may itself contain spaces and parentheses.
            start = fh.read().rsplit(b")", 1)[1].split()[19].decode()
        exe = os.readlink(f"/proc/{ppid}/exe")
    except (OSError, IndexError):
        pass  # no /proc (macOS): the PID alone, a weaker but still useful identity
    return f"{ppid}\t{start}\t{exe}".replace("\n", " ")
