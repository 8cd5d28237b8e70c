"""The study directory: its paths, and the lock that lets one driver at a time run it.

The driver lock is an OS file lock (``filelock``), so it dies with its process: a driver
killed with SIGKILL never blocks the resume. Who holds it is written beside it, so a second
``run`` can name the holder.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import socket
import time
from typing import Any

from filelock import FileLock, Timeout

from . import cancel_mark
from . import events as ev
from .errors import StudyBusy, StudyError, in_python_api, is_disk_full
from .history import History
from .journal import Journal

HOLDER_WAIT_S = 2.0
#: what a directory may hold before its study record is written: the locks, the holder's
#: card, an empty history, the objective the Python API installs before the driver runs, and
#: ``autotune cancel``'s notes to that holder (a cancel killed half-way, a loop refused at
#: its start, leave theirs: no study's results)
BEFORE_THE_RECORD = ("driver.lock", "driver.json", "history.lock", "history.jsonl",
                     "objective.pkl", cancel_mark.NAME, cancel_mark.ASKING)
#: the notes among them, each written through a temporary file beside it (``<name>.*tmp*``)
NOTES = ("driver.json", cancel_mark.NAME, cancel_mark.ASKING)


class StudyDir:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.history = os.path.join(self.path, "history.jsonl")
        self.trajectory = os.path.join(self.path, "trajectory.csv")
        self.trials = os.path.join(self.path, "trials")
        self.cache = os.path.join(self.path, "cache")
        self.plots = os.path.join(self.path, "plots")
        self.slurm = os.path.join(self.path, "slurm")   # submitit's folder of the SLURM jobs
        self._lock = FileLock(os.path.join(self.path, "driver.lock"))
        self._holder = os.path.join(self.path, "driver.json")

    def exists(self) -> bool:
        return os.path.exists(self.history)

    def slurm_job_dir(self, job_id: str) -> str:
        """Submitit's folder of one SLURM job: its call, its logs while it runs, its result."""
        return os.path.join(self.slurm, job_id)

    def slurm_job_file(self, job_id: str, suffix: str) -> str:
        """One of submitit's files of a SLURM job, in its folder: ``<job id>_<suffix>``
        (``submitted.pkl``, and per rank ``<rank>_result.pkl``, ``<rank>_log.out``,
        ``<rank>_log.err``). Every name below is made here."""
        return os.path.join(self.slurm_job_dir(job_id), f"{job_id}_{suffix}")

    def slurm_submitted(self, job_id: str) -> str:
        """The pickled call submitit keeps for the job's whole life (moved here once sbatch
        gave the job id)."""
        return self.slurm_job_file(job_id, "submitted.pkl")

    def slurm_result(self, job_id: str, rank: int = 0) -> str:
        """The result submitit writes for one rank of a SLURM job as it ends."""
        return self.slurm_job_file(job_id, f"{rank}_result.pkl")

    def slurm_log(self, job_id: str, rank: int = 0, stream: str = "err") -> str:
        """A rank's stdout (``stream`` ``out``) or stderr (``err``) as submitit writes it."""
        return self.slurm_job_file(job_id, f"{rank}_log.{stream}")

    def slurm_ranks(self, job_id: str) -> set[int]:
        """The ranks of a SLURM job that left a file of their own in its folder (a log or a
        result, ``slurm_log``, ``slurm_result``); none where the folder cannot be read."""
        own = re.compile(rf"{re.escape(job_id)}_(\d+)_(?:log\.out|log\.err|result\.pkl)")
        try:
            names = os.listdir(self.slurm_job_dir(job_id))
        except OSError:
            return set()
        return {int(m.group(1)) for name in names if (m := own.fullmatch(name))}

    def slurm_job_ids(self) -> set[str]:
        """The SLURM jobs submitted into this study directory whose folder is still there
        (submitit makes it as sbatch answers; the executor drops it once the job's end is
        recorded, per ``cleanup``)."""
        try:
            with os.scandir(self.slurm) as entries:
                return {e.name for e in entries if e.is_dir(follow_symlinks=False)
                        and e.name.split("_")[0].isdigit()}
        except OSError:
            return set()

    def trial_dir(self, trial: int) -> str:
        return os.path.join(self.trials, str(trial))

    def check_run(self) -> None:
        """Everything ``run`` refuses about the directory itself, before the lock is taken
        or anything is written."""
        self.check_writable()
        self.check_study_or_new()

    def check_study_or_new(self) -> None:
        """A new study starts only in a new or empty directory. One whose history.jsonl
        holds nothing (emptied, or never there) but which holds other files is an old study
        that lost its record, or not a study at all: a new study would overwrite its
        trajectory.csv and trials/<id>/ files, perhaps the only copy of earlier results."""
        if not os.path.isdir(self.path):
            return  # a new directory
        if not _blank(self.history):
            self.check_recoverable()  # a study (a damaged record is rebuilt, not replaced)
            return
        others = self._others()
        if not others:
            return
        shown = _shown(self.path, others)
        if os.path.exists(self.history):
            why = f"history.jsonl holds no study record, yet the directory holds {shown}"
        else:
            why = f"not a study directory (no history.jsonl), and not empty: it holds {shown}"
        raise StudyError(f"{dir_key()}: {self.path}: {why}; a new study would overwrite what "
                         "is there: use an empty or new directory")

    def check_recoverable(self) -> None:
        """Refuse a history that no study record can be rebuilt over. A damaged study record
        is rebuilt from the study file when the journal's other lines say what to check it
        against; when none say anything of a trial, the check passes vacuously, the rebuilt
        study starts again at trial 0 and runs its recorded trials a second time, over their
        trials/<id>/ folders and trajectory.csv. Only a crash while writing the very first
        line (one torn line, nothing else there) is a study that never recorded anything."""
        if _starts_with_a_record(self.history):
            return  # the usual case, decided without reading the whole journal
        history = History.load(Journal(self.history))
        if history.study or history.trials or history.lost:
            return  # whole, or damage that recovery checks against the recorded trials
        ran = bool(_entries(self.trials)) or _lists_a_trial(self.trajectory)
        if not ran and (history.notes or history.stages):
            return  # a resume record or the pretrain's lines: recovery checks them, no trial ran
        others = self._others()
        if not ran and (not history.damaged or history.damaged == 1 and not others
                        and _torn(self.history)):
            return  # a crash while the first line was written: nothing was recorded
        lines = f"{history.damaged} damaged line{'s' if history.damaged != 1 else ''}"
        what = ("its study record and every line naming a trial are unreadable"
                if history.notes or history.stages else "no line of it can be read"
                if history.damaged else "it records no study and no trial")
        there = f", yet the directory holds {_shown(self.path, others)}" if others else ""
        raise StudyError(f"{self.history}: damaged past recovery: {what} ({lines}){there}; a "
                         "study rebuilt from the study file would run its recorded trials "
                         "again under their old numbers: restore history.jsonl from a backup, "
                         f"or move {self.path} aside to start a new study")

    def _others(self) -> list[str]:
        """The directory's files that no study has before its record (trajectory.csv,
        trials/, ...): signs that a study ran here, or that it is someone else's."""
        return sorted(name for name in os.listdir(self.path) if not before_the_record(name))

    def check_writable(self) -> None:
        """Refuse, before the lock is taken or a line is written, an existing directory that
        ``run`` could not carry on in: otherwise a permission problem surfaces as a traceback
        after a trial was already asked (its ``ask`` line written, its directory not made)."""
        if not os.path.isdir(self.path):
            return  # acquire() makes it, and says so in one line if it cannot
        require(self.path, read=True, write=True, prefix=f"{dir_key()}: ")
        require(self.history, read=True, write=True, prefix=f"{dir_key()}: ", folder=False)
        for path in (self.trials, self.cache, os.path.join(self.path, "stages")):
            require(path, write=True, prefix=f"{dir_key()}: ", folder=True)
        for path in (self._lock.lock_file, os.path.splitext(self.history)[0] + ".lock"):
            require(path, write=True, prefix=f"{dir_key()}: ", folder=False)
        # replaced through a file beside it, whatever its own mode
        require(self.trajectory, prefix=f"{dir_key()}: ", folder=False)

    def check_readable(self) -> None:
        """What ``status`` and ``report`` read: the directory and the history."""
        require(self.path, read=True)
        require(self.history, read=True)

    def recorded(self) -> bool:
        """Whether the history records anything (an empty or blank one is a new study's; a
        directory in its place, or a file in the study directory's, is ``check_run``'s to
        name)."""
        return os.path.isfile(self.history) and not _blank(self.history)

    def acquire(self, by: str = "run", wait_s: float = 0) -> None:
        """Take the driver lock; a directory that cannot be made or written is one line.
        ``by`` says what holds it (``run``, ``ask/tell``: a loop of the caller's own, or
        ``create_study``), for the refusal another process is given (see ``busy``);
        ``wait_s``: how long to wait for a holder to let go first."""
        made = not os.path.isdir(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
            self._lock.acquire(timeout=wait_s)
        except Timeout:
            raise self.busy() from None
        except OSError as exc:
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)
            raise StudyError(f"{dir_key()}: cannot write a study into {self.path} "
                             f"({exc.strerror or exc})") from None
        try:
            self._write_holder(by)
        except OSError as exc:
            self._lock.release()
            if is_disk_full(exc):
                raise
            # a directory whose lock may be taken but no file made in it (read-only, its
            # files the owner's): named as such, not by driver.json's temporary file
            raise StudyError(f"{dir_key()}: cannot write a study into {self.path} "
                             f"({exc.strerror or exc})") from None

    def busy(self) -> StudyBusy:
        """The refusal of a directory whose lock is held, naming the holder. The holder may
        be this very process (a second Study object on the same directory): its own pid
        would read as someone else's, so that is said instead."""
        holder = self.holder()
        if self._held_here():
            return StudyBusy(f"{self.path} is held by this same process, {holder}: another "
                             "Study object (or driver) in it has the directory open; close() "
                             "that one, or end its with block, first")
        if self.card().get("by") == "ask/tell":  # a Study object, not a driver's loop
            return StudyBusy(f"{self.path} is held by an ask/tell loop in {holder} (a Study "
                             "from its first ask() until close()); close() that Study, or end "
                             "that process, first")
        return StudyBusy(f"{self.path} is being run by {holder}; "
                         "wait for it to finish or stop that driver first")

    def _held_here(self) -> bool:
        """Whether driver.json names this process (read after ``holder()`` waited for it)."""
        info = self.card()
        return info.get("pid") == os.getpid() and info.get("host") == socket.gethostname()

    def card(self) -> dict[str, Any]:
        """driver.json's fields (host, pid, since, by: ``run`` or ``ask/tell``), the holder's
        card; empty where it is missing or unreadable (a holder written before ``by`` was
        recorded is a run)."""
        try:
            with open(self._holder) as fh:
                info = json.load(fh)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _write_holder(self, by: str = "run") -> None:
        """Written atomically, so a second driver never reads it half-written ("holder
        unknown" while the first driver is alive)."""
        tmp = f"{self._holder}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as fh:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                           "since": time.time(), "by": by}, fh)
            os.replace(tmp, self._holder)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)  # a half-written one (a full disk), left for no reader
            raise

    def release(self) -> None:
        try:
            os.remove(self._holder)
        except FileNotFoundError:
            pass
        self._lock.release()

    def holder(self) -> str:
        """Who holds the lock. The holder writes driver.json just after taking the lock, so a
        missing file, or one left by a dead driver, is read again for a moment."""
        give_up = time.monotonic() + HOLDER_WAIT_S
        while True:
            try:
                with open(self._holder) as fh:
                    info = json.load(fh)
                pid, host = int(info["pid"]), str(info["host"])
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
                if host != socket.gethostname() or _alive(pid) or time.monotonic() > give_up:
                    return f"pid {pid} on host {host} (since {since})"
            except (OSError, ValueError, KeyError, TypeError):
                if time.monotonic() > give_up:
                    return "another driver (holder unknown: driver.json is missing)"
            time.sleep(0.05)

    def driver_running(self) -> bool:
        """Whether some driver holds the lock right now (for ``status``). A driver makes the
        lock file before anything else, so without one none is running; a lock file this
        reader may not write (a read-only copy of a study) is probed read-only."""
        path = os.path.join(self.path, "driver.lock")
        if not os.path.exists(path):
            return False
        if not os.access(path, os.W_OK):
            return _held_read_only(path)
        probe = FileLock(path)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False


def before_the_record(name: str) -> bool:
    """Whether a file so named may be in a study directory before its study record: one of
    ``BEFORE_THE_RECORD``, or a note's temporary file left by a writer killed mid-write."""
    return name in BEFORE_THE_RECORD or any(name.startswith(f"{note}.") and "tmp" in name
                                            for note in NOTES)


def no_study(path: str) -> StudyError:
    """The one line for a directory without a history.jsonl (or a file), read as a study
    (status, report, cancel, ``load``, ``load_study``). One whose folders are studies, as a compare
    DIR's runs are (one per algorithm and seed), names them: that is what to give instead."""
    if os.path.isfile(path):  # the study file, most likely, given for its directory
        return StudyError(f"{path}: is a file, expected a study directory (the one run wrote, "
                          "holding history.jsonl)")
    inner = studies_in(path)
    if not inner:
        return StudyError(f"{path}: no study here (no history.jsonl)")
    shown = ", ".join(os.path.join(path, name) for name in inner[:4])
    more = f", ... ({len(inner)} in all)" if len(inner) > 4 else ""
    return StudyError(f"{path}: no study here (no history.jsonl), but its folders are studies "
                      f"(a compare DIR holds one per algorithm and seed): name one of them, "
                      f"{shown}{more}")


def studies_in(path: str) -> list[str]:
    """The folders of ``path`` that hold a study (a history.jsonl), sorted; a comparison's
    shared pretrain last, after the runs a reader most likely looks for."""
    try:
        names = os.listdir(path)
    except OSError:
        return []
    found = [n for n in names if os.path.isfile(os.path.join(path, n, "history.jsonl"))]
    return sorted(found, key=lambda n: (n == "pretrain", n))


def dir_key() -> str:
    """The argument that named the directory, as the caller wrote it: ``--dir`` from the
    CLI, ``dir`` from the Python API."""
    return "dir" if in_python_api() else "--dir"


def require(path: str, read: bool = False, write: bool = False, prefix: str = "",
            hint: str = "", folder: bool | None = None) -> None:
    """One line naming ``path`` when it exists but cannot be read or written as needed (a
    directory also needs to be searchable), or is a directory where a file goes
    (``folder=False``) or a file where a directory goes (``folder=True``): opening, replacing
    or making something inside it raised IsADirectoryError or NotADirectoryError, a
    traceback. A path that does not exist yet is left to be made."""
    if not os.path.exists(path):
        return
    if folder is not None and os.path.isdir(path) != folder:
        expected = "a directory" if folder else "a file"
        found = "a file" if folder else "a directory"
        raise StudyError(f"{prefix}{path}: is {found}, expected {expected}{hint}")
    search = os.X_OK if os.path.isdir(path) else 0
    if read and not os.access(path, os.R_OK | search):
        raise StudyError(f"{prefix}cannot read {path} (permission denied){hint}")
    if write and not os.access(path, os.W_OK | search):
        why = "read-only file system" if _read_only_fs(path) else "permission denied"
        raise StudyError(f"{prefix}cannot write {path} ({why}){hint}")


def _shown(path: str, names: list[str]) -> str:
    """The first three of ``names`` (folders with a slash), as a refusal lists them."""
    return ", ".join(name + ("/" if os.path.isdir(os.path.join(path, name)) else "")
                     for name in names[:3]) + (", ..." if len(names) > 3 else "")


def _entries(path: str) -> list[str]:
    """What a folder holds; nothing where it is missing or no folder."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def _lists_a_trial(path: str) -> bool:
    """Whether trajectory.csv has a trial's row (the pretrain's is no trial's): a sign that
    trials ran here, though no folder of theirs is left (the inline executor makes none)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            return any(row and row[0].isdigit() for row in csv.reader(fh))
    except (OSError, csv.Error):
        return False


def _torn(path: str) -> bool:
    """Whether a history's last line is unfinished (no newline): a crash mid-write."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def _starts_with_a_record(path: str) -> bool:
    """Whether a history's first line is a valid study record, as every history not
    damaged there begins."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except OSError:
        return True  # what cannot be read is the reading's to say (Journal.read), not this
    return any(e.get("e") == ev.Kind.STUDY.value for e in ev.decode(first).events)


def _blank(path: str) -> bool:
    """Whether a history holds nothing at all (missing, empty, or only blank lines)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4097)
    except FileNotFoundError:
        return True
    return len(head) <= 4096 and not head.strip()


def _read_only_fs(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _held_read_only(path: str) -> bool:
    """The driver lock probed through a read-only descriptor (flock needs no write access);
    unreadable too: unknown, said as not running, since status only reports it."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing the descriptor drops a lock taken through it
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
