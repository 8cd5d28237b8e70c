"""``python -m autotune run|status|report``: the user's entry points.

Mistakes in what the user gave are one line on stderr and exit status 2; a study directory
held by another driver is exit status 3; a study whose trials all failed (or that stopped at
``max_failures``) exits 4; an interrupted run exits 130 and resumes on re-run; a full disk (or
quota) is one line naming the path and exit status 75 (EX_TEMPFAIL: free space and run the
same command again); a failed stage (the pretrain) stops the study with exit status 1 and is
tried again on re-run. A reader that leaves (``| head``) changes none of these.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from .errors import DiskFull, StudyBusy, StudyError
from .history import History, TrialRecord
from .journal import Journal
from .studydir import StudyDir, no_study, require

if TYPE_CHECKING:
    from .study import Study


DISK_FULL_EXIT = 75


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = sys.argv[1:] if argv is None else argv
    stray = [a for a in given[:1] if a.startswith("-") and a not in ("-h", "--help", "--version")]
    if stray:  # before the subcommand: argparse would only say that one is required
        parser.error(f"unrecognized option {stray[0]} before the command (the commands: "
                     f"{', '.join(parser.commands)}; their options come after them)")
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame the top-level parser; name the subcommand's instead
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    with readers_may_leave():
        return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """The subcommand, its errors made one line and an exit status each."""
    try:
        return args.func(args)
    except StudyBusy as exc:  # before StudyError, of which it is one: its own status
        print(f"autotune: error: {exc}", file=sys.stderr)
        return 3
    except StudyError as exc:
        print(f"autotune: error: {exc}", file=sys.stderr)
        return 2
    except DiskFull as exc:
        print(f"autotune: error: {exc}", file=sys.stderr)
        return DISK_FULL_EXIT
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # what the checks up front could not foresee (a lock file made a directory, which
        # status, report and cancel open without them): still one line
        print(f"autotune: error: cannot access {exc.filename or ''} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the driver took over its signals, or after
        print("autotune: interrupted", file=sys.stderr)
        return 130


class ReaderMayLeave:
    """A standard stream whose reader may leave (``autotune status DIR | head -1``, ``run
    STUDY | head``): the first write that finds the pipe closed points the stream's
    descriptor at /dev/null, and what follows is dropped there. The command goes on (a
    study runs to its end, its trials and records unharmed), the other stream's lines still
    come and the exit status stays the outcome's (4 for a failed study): catching the
    BrokenPipeError in ``main`` returned 0 in its place, a success to ``set -o pipefail``, and
    an unflushed buffer failing at exit made it 120."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)
        self._stream.flush()  # what its buffer still held: into /dev/null, not at exit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def readers_may_leave() -> Iterator[None]:
    """stdout and stderr as ``ReaderMayLeave`` while a command runs, flushed before they are
    put back (else the interpreter's own flush at exit meets the closed pipe)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ReaderMayLeave(saved[0]), ReaderMayLeave(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved


class _Parser(argparse.ArgumentParser):
    """argparse as the rest of the CLI speaks: a mistake is one line on stderr, exit status 2.

    argparse's own error prints the usage before it (three lines for ``compare``), and its
    prefix matching took a misspelt flag for another (``--retry`` ran ``--retry-failed``,
    ``--htm`` was ``--html``): flags are matched whole, and the line points to ``--help``.
    """

    commands: dict[str, argparse.ArgumentParser]

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands = {}

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def path_given(text: str) -> str:
    """A path argument, refused when empty: ``--dir "$OUT"`` with ``OUT`` unset ran in
    runs/<name> (``run``), or wrote a comparison into the current directory (``compare``)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string (an unset shell "
                                         "variable?)")
    return text


def build_parser() -> _Parser:
    from . import __version__

    parser = _Parser(prog="autotune", description="Hyperparameter search on HPC")
    parser.add_argument("--version", action="version", version=f"autotune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a study, or resume it if DIR already holds one")
    run.add_argument("study", type=path_given, help="the study file (YAML)")
    run.add_argument("--dir", type=path_given, help="study directory (default runs/<name>)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress or start lines (warnings stay)")
    run.add_argument("--retry-failed", action="store_true",
                     help="run the study's failed trials again (under their own ids)")
    run.add_argument("--accept-objective-change", action="store_true",
                     help="resume although the objective's entry or command changed")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="counts, best so far, elapsed (safe while running)")
    status.add_argument("dir", type=path_given)
    status.set_defaults(func=cmd_status)
    comp = sub.add_parser("compare", help="several algorithms on one study, same budget")
    comp.add_argument("study", type=path_given)
    comp.add_argument("--algorithms", help="comma-separated, e.g. axis,asha,random")
    comp.add_argument("--seeds", type=int, help="runs per algorithm (default 1; at most 1000 "
                      "runs in all)")
    comp.add_argument("--dir", required=True, type=path_given, help="one study directory per run goes here")
    comp.add_argument("--budget", type=float, help="compute seconds per run (max_compute_s)")
    comp.add_argument("--executor", help="override the study's executor kind (e.g. simulated)")
    comp.set_defaults(func=cmd_compare)
    cancel = sub.add_parser("cancel", help="stop the study's driver, cancel its queued and "
                            "running SLURM jobs and stop the local trials a killed driver left")
    cancel.add_argument("dir", type=path_given)
    cancel.set_defaults(func=cmd_cancel)
    report = sub.add_parser("report", help="DIR/summary.txt, DIR/trajectory.csv and PNG plots "
                            "in DIR/plots")
    report.add_argument("dir", type=path_given)
    report.add_argument("--html", action="store_true",
                        help="also DIR/report.html: plots and a sortable trial table in one file")
    report.set_defaults(func=cmd_report)
    parser.commands = {"run": run, "status": status, "compare": comp, "cancel": cancel,
                       "report": report}
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from .driver import Driver
    from .study import load_study

    study = load_study(args.study, tolerate_unfilled=True)  # the driver knows if it was so
    directory = args.dir or os.path.join("runs", study.name)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise StudyError(f"--dir: {directory} exists and is not a directory")
    summary = Driver(study, directory, progress=not args.quiet, retry_failed=args.retry_failed,
                     accept_objective=args.accept_objective_change).run()
    if summary.stopped == "interrupted" and summary.by_cancel:
        # cancel cancels the jobs as soon as this driver lets go: none is left to re-attach to
        print(f"stopped by autotune cancel; to go on with the search: python -m autotune run "
              f"{args.study} --dir {directory}", file=sys.stderr)
        if study.executor == "slurm" and pretrain_in_flight(directory):
            print("autotune: autotune cancel cancels the pretrain's SLURM job; the next run "
                  "records it as cancelled and builds it again (by its result, its checkpoint "
                  "kept, where its job runs to its end before SLURM stops it: cancel says so)",
                  file=sys.stderr)
        elif study.executor == "slurm":
            print("autotune: autotune cancel cancels the study's SLURM jobs in flight; the "
                  "next run records those trials as cancelled (by their results those whose "
                  "jobs run to their end before SLURM stops them: cancel names them)",
                  file=sys.stderr)
        return 130
    if summary.stopped == "interrupted":
        print(f"interrupted; resume with: python -m autotune run {args.study} --dir {directory}",
              file=sys.stderr)
        left = slurm_jobs_left(directory) if study.executor == "slurm" else ""
        if left:
            print(f"autotune: {left} left queued or running on SLURM (the next run re-attaches "
                  f"to them); python -m autotune cancel {directory} cancels them",
                  file=sys.stderr)
        return 130
    if summary.stopped == "failed":
        print(f"autotune: {summary.error}", file=sys.stderr)
        if summary.tail:
            print("  " + summary.tail.replace("\n", "\n  "), file=sys.stderr)
        print(f"fix it and run again: python -m autotune run {args.study} --dir {directory}",
              file=sys.stderr)
        return 1
    best = summary.best
    print(f"study {study.name}: {summary.trials} trial{'' if summary.trials == 1 else 's'}, "
          + ", ".join(f"{v} {k}" for k, v in sorted(summary.counts.items())))
    if best is not None:
        free = {p.name for p in study.space.free}
        shown = ", ".join(f"{k}={v}" for k, v in best.params.items() if k in free)
        print(f"best {study.objective.metric} = {best.value:.6g} (trial {best.trial})"
              + (f" with {shown}" if shown else ""))
        for line in own_setting_lines(summary.searcher, best, study, free):
            print(line)
    elif summary.counts.get("ok"):
        from .summary import short_lines

        history = History.load(Journal(os.path.join(directory, "history.jsonl")))
        print("\n".join(short_lines(history, study.objective.mode, study.objective.metric)))
    print(f"trajectory: {os.path.join(directory, 'trajectory.csv')}")
    if summary.counts.get("failed"):
        from .failures import failure_lines

        history = History.load(Journal(os.path.join(directory, "history.jsonl")))
        print("\n".join(failure_lines(history, os.path.abspath(directory))), file=sys.stderr)
    if summary.stopped == "failing":
        print(f"autotune: stopped: the first {study.max_failures} trials to end all failed "
              "(max_failures); fix the cause, then: python -m autotune run "
              f"{args.study} --dir {directory} --retry-failed", file=sys.stderr)
        left = sum(summary.counts.get(k, 0) for k in ("running", "pending", "running-alone"))
        if study.executor == "slurm" and left:
            print(f"autotune: {left} trial(s) may still be queued or running on SLURM; "
                  f"python -m autotune cancel {directory} cancels them", file=sys.stderr)
        return 4
    if summary.counts.get("failed") and not summary.counts.get("ok"):
        # a re-run does not run failed trials again: say how, as the max_failures stop does
        print("autotune: every trial failed; fix the cause, then: python -m autotune run "
              f"{args.study} --dir {directory} --retry-failed", file=sys.stderr)
        return 4
    return 0


def own_setting_lines(view: dict[str, Any], best: TrialRecord, study: Study,
                      free: set[str]) -> list[str]:
    """The search's own setting (the axis search's, with its mean over repeated runs) where
    it says more than the best trial: another setting, or the same one measured again. Under
    noise the best single trial is the luckiest, and the setting to use is this one."""
    from .summary import setting_lines

    base = view.get("base")
    if not isinstance(base, dict) or not view.get("base_repeats"):
        return []
    same = all(base.get(k) == best.params.get(k) for k in free)
    if same and view["base_repeats"] < 2:
        return []
    return setting_lines({k: v for k, v in view.items() if k != "screening"},
                         study.objective.mode, study.objective.metric, lambda k: k in free)


def pretrain_in_flight(directory: str) -> bool:
    """Whether the stopped driver left the pretrain's job in flight (no trial runs before
    its end): what cancel cancels is that job, not trials."""
    history = History.load(Journal(os.path.join(directory, "history.jsonl")))
    return any(st.status == "running" and st.job_id for st in history.stages.values())


def slurm_jobs_left(directory: str) -> str:
    """The SLURM jobs a stopped driver left running (the pretrain's, the trials'), in words;
    "" when none: Ctrl-C leaves them, so the user must hear where they are."""
    from .states import cancelled_jobs, stage_state, trial_states

    history = History.load(Journal(os.path.join(directory, "history.jsonl")))
    cancelled = cancelled_jobs(history)
    parts = [f"the {st.name}'s job {st.job_id}" for st in history.stages.values()
             if stage_state(st, False, directory, cancelled) == "running-alone"]
    trials = sum(state == "running-alone"
                 for state in trial_states(history, False, directory).values())
    if trials:
        parts.append(f"{trials} trial job{'s' if trials != 1 else ''}")
    return " and ".join(parts)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import ComparisonInterrupted, PretrainFailed, compare, summarise

    try:
        rows = compare(args.study, args.dir, args.algorithms, args.seeds, args.budget,
                       args.executor)
    except ComparisonInterrupted as exc:
        print(f"autotune: {exc}", file=sys.stderr)
        return 130
    except PretrainFailed as exc:
        print(f"autotune: {exc}", file=sys.stderr)
        return 1
    print(summarise(rows))
    print(f"wrote {os.path.join(args.dir, 'comparison.csv')} and plots in "
          f"{os.path.join(args.dir, 'plots')}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from .cancel import cancel_study

    print(cancel_study(args.dir))
    return 0


def open_history(directory: str) -> tuple[StudyDir, History]:
    sdir = StudyDir(directory)
    sdir.check_readable()
    if not sdir.exists():
        raise no_study(directory)
    history = History.load(Journal(sdir.history))
    if not history.study:
        if not history.trials:
            raise StudyError(f"{directory}: history.jsonl holds no study record")
        history.warnings.append("the study record is damaged: `autotune run` with the study "
                                "file rebuilds it")
    return sdir, history


def cmd_status(args: argparse.Namespace) -> int:
    from .summary import summary

    sdir, history = open_history(args.dir)
    print(summary(history, running_driver=sdir.driver_running(), directory=sdir.path))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .errors import is_disk_full
    from .htmlreport import refreshed

    sdir, history = open_history(args.dir)
    check_schema_known(sdir, history)
    args.html = refreshed(sdir.path, args.html)  # an earlier --html's page kept current
    check_report_writable(sdir, args.html)
    try:
        return write_report(args, sdir, history)
    except OSError as exc:
        # a full disk or quota: one line naming the file, as for ``run``; each file is
        # written whole or left as it was (``trajectory.write_whole``), no temporary left
        if is_disk_full(exc):
            raise DiskFull(exc.filename or sdir.path, then="run report again") from None
        raise


def write_report(args: argparse.Namespace, sdir: StudyDir, history: History) -> int:
    """``report``'s files, each written whole: summary.txt, trajectory.csv, plots/*.png and
    (``--html``) report.html."""
    from .report import plot_all
    from .summary import summary
    from .trajectory import table, write_csv_atomic, write_whole
    from .states import stage_states, trial_states

    running = sdir.driver_running()
    states = trial_states(history, running, sdir.path)
    stages = stage_states(history, running, sdir.path)
    text = summary(history, running_driver=running, directory=sdir.path, states=states,
                   stages=stages)
    write_csv_atomic(sdir.trajectory, *table(history, states, stages))

    def fill(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write(text + "\n")

    write_whole(os.path.join(sdir.path, "summary.txt"), fill)
    from .summary import elapsed_to

    now = elapsed_to(history, running, sdir.path, states, stages)[0]
    written = plot_all(history, sdir.plots, states, now)
    print(text)
    print(f"wrote {os.path.join(sdir.path, 'summary.txt')}, {sdir.trajectory} and "
          f"{len(written)} plots in {sdir.plots}")
    if args.html:
        from .htmlreport import write_html_report

        page = write_html_report(history, text, written, sdir.path, states=states,
                                 stages=stages)
        print(f"wrote {page}")
    return 0


def check_schema_known(sdir: StudyDir, history: History) -> None:
    """``report`` rewrites trajectory.csv and summary.txt: from a history a newer autotune
    wrote (as ``run`` does, it refuses to) they would lose the columns and lines this version
    does not know of. ``status`` writes nothing and shows it, with a warning."""
    from .events import SCHEMA

    if history.study and history.version > SCHEMA:
        raise StudyError(f"{sdir.history}: written by a newer autotune (history schema "
                         f"{history.version}; this one reads up to {SCHEMA}); report would "
                         "rewrite its files with this version's columns: upgrade autotune "
                         "(status shows it as far as this version understands it)")


def check_report_writable(sdir: StudyDir, html: bool) -> None:
    """``report`` writes into the study directory (summary.txt, trajectory.csv through a
    temporary file beside it, plots/, report.html): refuse a read-only one before writing any
    of it, rather than fail half-way with a traceback. ``status`` writes nothing."""
    hint = "; report writes summary.txt, trajectory.csv and plots/ there (status only reads)"
    require(sdir.path, write=True, hint=hint)
    require(sdir.plots, write=True, hint=hint, folder=True)
    require(sdir.trajectory, hint=hint, folder=False)  # replaced, whatever its own mode
    files = [os.path.join(sdir.path, "summary.txt")]
    if os.path.isdir(sdir.plots) and os.access(sdir.plots, os.R_OK | os.X_OK):
        files += [os.path.join(sdir.plots, n) for n in sorted(os.listdir(sdir.plots))
                  if n.endswith(".png")]
    if html:
        files.append(os.path.join(sdir.path, "report.html"))
    for path in files:  # a directory in a file's place: os.replace and open raised, a traceback
        require(path, write=True, hint=hint, folder=False)
