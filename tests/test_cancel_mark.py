"""``autotune cancel``'s note to the driver it stops (``cancel_mark``): believed only when it
names this process and its writer still runs, so a stale or foreign note never makes a
driver stopped otherwise say that its SLURM jobs are being cancelled."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from autotune import cancel_mark


def test_the_note_is_believed_only_for_this_driver_while_its_writer_runs(tmp_path):
    d = str(tmp_path)
    assert not cancel_mark.stopped_by_cancel(d)            # none written
    cancel_mark.mark(d, os.getpid())                        # written by this (live) process
    assert cancel_mark.stopped_by_cancel(d)
    cancel_mark.mark(d, os.getpid() + 100000)               # another driver's
    assert not cancel_mark.stopped_by_cancel(d)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(d, cancel_mark.NAME), "w") as fh:  # a cancel killed half-way
        json.dump({"driver": os.getpid(), "by": int(gone)}, fh)
    assert not cancel_mark.stopped_by_cancel(d)
    with open(os.path.join(d, cancel_mark.NAME), "w") as fh:
        fh.write("{not json")
    assert not cancel_mark.stopped_by_cancel(d)
    cancel_mark.clear(d)
    cancel_mark.clear(d)  # twice: nothing to remove is no error
    assert os.listdir(d) == []
