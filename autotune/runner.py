"""Running one trial: call the entry or the command, and judge what it gave back.

Shared by every executor, so a trial behaves the same wherever it runs. A Python entry
``module:function`` is called as ``function(params, ctx) -> dict``; a ``command:`` template is
formatted with the parameters and ctx fields and run in a shell, its result being the JSON
object in ``<trial_dir>/result.json`` when it wrote one, else the one on its last stdout line.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import selectors
import shlex
import signal
import string
import subprocess
import time
from typing import Any

from .config import hint
from .contract import Ctx, ObjectiveSpec, load_entry, plain_metrics, real_number
from .errors import StudyError
from .proctable import descendants
from .stage_cache import ensure_pretrained


#: characters of a parameter name that ``str.format`` would read as field syntax
FIELD_SYNTAX = set(".[]!:{}")
# bytes of JSON a result's other values (no metric) may add to the history: every resume
# reads every line of it, so a returned image or array would slow each one down for good
EXTRA_LIMIT = 64 * 1024


def check_command(template: str, param_names: list[str]) -> None:
    """Every ``{field}`` must be a parameter or a ctx field: find out now, not per trial."""
    known = set(param_names) | set(Ctx.FIELDS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise StudyError(f"objective.command: {exc} in {template!r} (write {{{{ and }}}} for "
                         "literal braces)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        for param in param_names:
            if set(param) & FIELD_SYNTAX and field.startswith(param):
                raise StudyError(
                    f"objective.command: {{{param}}}: the parameter name {param!r} cannot be "
                    "used in a command, where '.', '[', '!' and ':' in a field mean attribute, "
                    "index, conversion and format spec (str.format syntax); rename it")
        base = name.split(".")[0].split("[")[0]
        if base not in known:
            raise StudyError(f"objective.command: unknown field {{{name}}} (expected a parameter "
                             f"or one of: {', '.join(sorted(Ctx.FIELDS))}; "
                             "write {{ and }} for literal braces)")
        if conversion not in (None, "s", "r", "a", "u"):
            raise StudyError(f"objective.command: {{{name}!{conversion}}}: unknown conversion "
                             "(expected !u for a value inserted unquoted, or none)")


class _ShellFormatter(string.Formatter):
    """Formats a command template with every substituted value shell-quoted for the place
    it lands in: outside quotes as one word, inside '...' or "..." escaped for that quote.
    ``{name!u}`` inserts a value as it is (to pass several flags in one parameter)."""

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        return value if conversion == "u" else super().convert_field(value, conversion)

    def vformat(self, template: str, args: Any, kwargs: Any) -> str:  # type: ignore[override]
        out, state = [], ""
        for literal, name, spec, conversion in self.parse(template):
            out.append(literal)
            state = _quote_state(literal, state)
            if name is None:
                continue
            value, _ = self.get_field(name, args, kwargs)
            text = self.format_field(self.convert_field(value, conversion), spec or "")
            out.append(text if conversion == "u" else _quote(text, state))
        return "".join(out)


def _quote_state(text: str, state: str) -> str:
    """The shell's quoting state after ``text``, as a stack of the contexts open: ``'`` and
    ``"`` (quotes), ``(`` (a ``$(...)`` command substitution or a parenthesis within one)
    and a backtick; "" where none is. Inside ``"$(...)"`` the shell reads the words afresh,
    unquoted: a value there quoted for the double quotes around it was split into words
    and its ``;`` ran what followed it as a command of its own."""
    escaped = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        cur = state[-1:]
        if escaped:
            escaped = False
        elif cur == "'":
            state = state[:-1] if ch == "'" else state
        elif ch == "\\":
            escaped = True
        elif ch == "$" and text[i + 1:i + 2] == "(":
            state += "("
            i += 1
        elif ch == "`":
            state = state[:-1] if cur == "`" else state + "`"
        elif cur == '"':
            state = state[:-1] if ch == '"' else state
        elif ch in "'\"":
            state += ch
        elif ch == "(" and cur == "(":
            state += "("
        elif ch == ")" and cur == "(":
            state = state[:-1]
        i += 1
    return state


def _quote(text: str, state: str) -> str:
    cur = state[-1:]
    if cur == "'":
        return text.replace("'", "'\\''")
    if cur == '"':
        return "".join("\\" + c if c in '\\"$`' else c for c in text)
    return shlex.quote(text)


def substitute(template: str, fields: dict[str, Any]) -> str:
    """Each literal ``{name}`` of ``fields`` in ``template`` replaced by its value, quoted as
    ``format_command`` quotes; every other brace left as it is (for a command that is not a
    format template, such as the D-DBPN job's ``evaluate_command``)."""
    if not fields:
        return template
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in fields))
    out, state, pos = [], "", 0
    for match in pattern.finditer(template):
        literal = template[pos:match.start()]
        out.append(literal)
        state = _quote_state(literal, state)
        out.append(_quote(str(fields[match.group()[1:-1]]), state))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def format_command(template: str, params: dict, ctx: Ctx) -> str:
    """The command line for one trial: the parameters and ctx fields, each shell-quoted; a
    field the trial lacks (``{resume_from}`` of one that continues none) an empty string."""
    fields = {**{k: "" if v is None else v for k, v in ctx.as_dict().items()}, **params}
    try:
        return _ShellFormatter().format(template, **fields)
    except (KeyError, IndexError) as exc:
        raise StudyError(f"objective.command: unknown field {exc} in {template!r}") from None


def run_objective(spec: ObjectiveSpec, params: dict, ctx: Ctx,
                  stdout: Any = None, stderr: Any = None) -> dict:
    """Run the trial and return its result mapping, numbers made plain (a numpy scalar
    would otherwise reach the local worker's JSON outcome as its ``str()``); raises on
    any failure."""
    if spec.pretrain is not None and ctx.pretrained is None:
        # the driver gives every trial its stage's checkpoint; this is for a loop of one's own
        ctx.pretrained = ensure_pretrained(spec.pretrain, ctx.study_dir, spec.python_path)
    if spec.entry is not None:
        result = load_entry(spec.entry, spec.python_path)(dict(params), ctx)
    else:
        result = run_command(spec, params, ctx, stdout, stderr)
    if not isinstance(result, dict):
        raise TypeError(f"objective returned {type(result).__name__}, expected a dict of metrics")
    return plain_metrics(result)


def run_command(spec: ObjectiveSpec, params: dict, ctx: Ctx, stdout: Any, stderr: Any) -> dict:
    """Run the command where ``run`` was launched, its output streamed to the trial's logs
    as it is written (a training's progress is visible while it runs)."""
    command = format_command(spec.command or "", params, ctx)
    result_file = os.path.join(ctx.trial_dir, "result.json")
    follower = bool(ctx.extra.get("rank"))  # a rank other than 0: its exit status is all
    if os.path.exists(result_file) and not follower:
        os.remove(result_file)
    env = {**os.environ, "AUTOTUNE_TRIAL": str(ctx.trial), "AUTOTUNE_TRIAL_DIR": ctx.trial_dir,
           "AUTOTUNE_SEED": str(ctx.seed), "PYTHONUNBUFFERED": "1"}
    cwd = ctx.launch_dir or None
    if cwd is not None and not os.path.isdir(cwd):
        raise RuntimeError(f"the launch directory {cwd} (where commands run) is gone")
    own_group = in_terminals_foreground()
    logs = in_process_logs(ctx) if stdout is None and stderr is None else ()
    if logs:
        stdout, stderr = logs
    try:
        proc = subprocess.Popen(command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=own_group)
        try:
            out_tail, err_tail = pump(proc, stdout, stderr)
        except BaseException:  # a second Ctrl-C (inline), the trial's timeout in a SLURM job
            stop_command(proc, own_group)
            raise
    finally:
        for fh in logs:
            fh.close()
    if proc.returncode != 0:
        why = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        last = [ln.strip() for ln in err_tail.decode(errors="replace").splitlines() if ln.strip()]
        raise RuntimeError(f"command {why}" + (f": {last[-1][:300]}" if last else ""))
    if follower:
        return {}
    if os.path.exists(result_file):  # written on purpose: it wins over the stdout line
        return read_result_file(result_file)
    line, cut = out_tail.result()
    if cut:
        raise ValueError(f"command's last stdout line is longer than {LINE_LIMIT // 2**20} MiB, "
                         "the most autotune reads of it, and it wrote no result.json: print a "
                         "smaller JSON object last, or write the result to "
                         "{trial_dir}/result.json")
    return result_of_line(line)


def in_process_logs(ctx: Ctx) -> tuple[Any, Any] | tuple[()]:
    """``stdout.log`` and ``stderr.log`` in the trial's folder, opened for appending, for a
    command run in the driver's own process (``inline``, ``simulated``), which has no
    worker's logs to stream to: its output went nowhere, and ``status`` showed no stderr of a
    failed trial (README: a command's stdout and stderr reach those files). () where the
    folder cannot be made (a trial of a probe with no folder: the output is dropped)."""
    try:
        os.makedirs(ctx.trial_dir, exist_ok=True)
        out = open(os.path.join(ctx.trial_dir, "stdout.log"), "a")
    except OSError:
        return ()
    try:
        err = open(os.path.join(ctx.trial_dir, "stderr.log"), "a")
    except OSError:
        out.close()
        return ()
    return out, err


def in_terminals_foreground() -> bool:
    """Whether this process is in its terminal's foreground process group, where a Ctrl-C
    at the terminal signals every process: the driver itself, running a trial in-process
    (``inline``, ``simulated``). There a command gets a session of its own, so that the
    first Ctrl-C stops the driver and lets the trial end as the driver says it will (it
    killed the command, whose trial was recorded failed: killed by signal 2); the second
    stops it (``stop_command``). A local trial's worker and a SLURM job have no terminal,
    and the worker's own group, ended as a whole, must hold the command."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return True
        except OSError:
            continue
    return False


def stop_command(proc: subprocess.Popen, own_group: bool) -> None:
    """End a command whose run was cut short (its reading interrupted): it ran on after
    the call that started it had given up on it."""
    if own_group:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:  # in a local worker's group or a SLURM job's: the shell and what it started
        for pid in [proc.pid, *descendants(proc.pid)]:  # all found before any is killed
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def result_of_line(line: str) -> dict:
    """The JSON object on the command's last non-blank stdout line; a line that is not one
    is quoted in the error (a progress line printed after the result, a cut-off object)."""
    if not line.strip():
        raise ValueError("command printed nothing on stdout and wrote no result.json "
                         "(expected a JSON object on its last line)")
    last = line.strip()
    shown = last if len(last) <= 120 else last[:117] + "..."
    try:
        result = json.loads(last)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"command's last stdout line is not JSON ({_why(exc)}) and it wrote "
                         f"no result.json: {shown}") from None
    if not isinstance(result, dict):
        raise ValueError(f"command's last stdout line is JSON but not an object of metrics "
                         f"and it wrote no result.json: {shown}")
    return result


def read_result_file(path: str) -> Any:
    """The command's ``result.json``; one that is not JSON is named in the trial's error (a
    bare decoder message does not say which file it was reading)."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is not valid JSON ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    """The decoder's reason; Python's JSON decoder gives up on nesting deeper than its
    recursion limit with a RecursionError, which reached the trial's error bare, naming
    neither the line nor the file it was reading."""
    if isinstance(exc, RecursionError):
        return "nested too deeply for Python's JSON decoder"
    return str(exc)


TAIL_BYTES = 65536
#: the longest last stdout line (the result) read whole; past it the trial fails saying so
LINE_LIMIT = 16 * 2**20


class LastLine:
    """What a command's stdout is read for: its last non-blank line (the result), kept
    whole up to ``LINE_LIMIT`` (``cut`` past it); the rest goes to the trial's stdout.log
    only. A line is what a terminal shows of it: the text after its last carriage return
    (``progress 100%\\r{"loss": 1}`` is the object), or before it where nothing follows
    (``{"loss": 1}\\r\\n``); so a progress bar redrawn with ``\\r`` for hours is never one
    line past the limit either."""

    def __init__(self) -> None:
        self.current = bytearray()   # the segment being written (since the last \r or \n)
        self.current_cut = False
        self.line = b""              # the current line's last non-blank segment before it
        self.line_cut = False
        self.last = b""              # the last complete non-blank line
        self.last_cut = False

    def __iadd__(self, chunk: bytes) -> "LastLine":
        for k, piece in enumerate(_SEPARATOR.split(chunk)):
            if k % 2:
                self._segment_ended()
                if piece == b"\n":
                    self._line_ended()
            elif not self.current_cut:
                self.current += piece
                if len(self.current) > LINE_LIMIT:
                    self.current_cut = True
                    self.current.clear()
        return self

    def _segment_ended(self) -> None:
        if self.current_cut or self.current.strip():
            self.line, self.line_cut = bytes(self.current), self.current_cut
        self.current.clear()
        self.current_cut = False

    def _line_ended(self) -> None:
        if self.line_cut or self.line.strip():
            self.last, self.last_cut = self.line, self.line_cut
        self.line, self.line_cut = b"", False

    def result(self) -> tuple[str, bool]:
        """The last non-blank line (an unfinished one counts), and whether it was cut."""
        for text, cut in ((self.current, self.current_cut), (self.line, self.line_cut),
                          (self.last, self.last_cut)):
            if cut or text.strip():
                return bytes(text).decode(errors="replace"), cut
        return "", False


#: where a segment of stdout ends: a newline ends the line, a carriage return redraws it
_SEPARATOR = re.compile(rb"(\r|\n)")


def pump(proc: subprocess.Popen, stdout: Any, stderr: Any) -> tuple[LastLine, bytes]:
    """Copy the command's stdout and stderr to ours as they come; keep stdout's last line
    (``LastLine``) and stderr's tail.
    Once the command has exited, a background child still holding its pipes (``cmd &``)
    is not waited for: what it wrote within ``DRAIN_S`` is kept, then reading stops."""
    sinks = {proc.stdout: (stdout, LastLine()), proc.stderr: (stderr, bytearray())}
    quiet_since = None
    with selectors.DefaultSelector() as sel:
        for pipe in sinks:
            sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map():
            ready = sel.select(timeout=0.1)
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                sink, tail = sinks[key.fileobj]
                if sink is not None:
                    _write(sink, chunk)
                tail += chunk
                if isinstance(tail, bytearray):
                    del tail[:-TAIL_BYTES]
            if proc.poll() is not None:
                if ready:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > DRAIN_S:
                    break
    proc.wait()
    for pipe in sinks:
        pipe.close()
    return sinks[proc.stdout][1], bytes(sinks[proc.stderr][1])


DRAIN_S = 0.3


def _write(sink: Any, chunk: bytes) -> None:
    buffer = getattr(sink, "buffer", None)
    if buffer is not None:
        sink.flush()
        buffer.write(chunk)
        buffer.flush()
    else:
        sink.write(chunk.decode(errors="replace"))
        sink.flush()


def extras(result: dict, spec: ObjectiveSpec) -> dict:
    """The result's values that are no metric (strings, booleans, None, lists, mappings: plain
    JSON data after ``plain_metrics``), recorded beside the metrics; the optimised metric and
    ``cost_s`` are judged, not kept as they came."""
    extra = {k: v for k, v in result.items()
             if k not in (spec.metric, "cost_s") and real_number(v) is None}
    return within_limit(extra)


def within_limit(extra: dict) -> dict:
    """``extra`` with its largest values replaced by a note of their size where together
    they pass ``EXTRA_LIMIT``: the small values (a message, a path, a short list) are what
    a table can show, and stay; the note says where large outputs belong."""
    sizes = {k: len(json.dumps(v, default=str)) for k, v in extra.items()}
    if sum(sizes.values()) <= EXTRA_LIMIT:
        return extra
    kept, used = set(), 0
    for key in sorted(extra, key=lambda k: sizes[k]):
        if used + sizes[key] <= EXTRA_LIMIT:
            kept.add(key)
            used += sizes[key]
    return {k: v if k in kept else
            f"not recorded: {sizes[k]:,} bytes of JSON, over the {EXTRA_LIMIT // 1024} KB a "
            f"result's other values may add to the history; write large outputs into the "
            f"trial's directory" for k, v in extra.items()}


def judge(result: dict, spec: ObjectiveSpec) -> tuple[dict, float | None, str | None]:
    """Split a raw result into numeric metrics, the optimised value, and an error if any.
    Any real-number scalar counts (``real_number``: numpy, 0-d tensors), stored as a float."""
    numbers = {k: real_number(v) for k, v in result.items()}
    metrics = {k: as_float(n) for k, n in numbers.items() if n is not None}
    if spec.metric not in result:
        keys = sorted(str(k) for k in result)
        return metrics, None, (f"result has no metric {spec.metric!r}"
                               f"{hint(spec.metric, keys)} (keys: {keys})")
    value = numbers[spec.metric]
    if value is None:
        return metrics, None, f"metric {spec.metric!r} is not a number: {result[spec.metric]!r}"
    if not math.isfinite(metrics[spec.metric]):
        shown = value if isinstance(value, float) else "an integer too large for a float"
        return metrics, None, f"metric {spec.metric!r} is {shown}"
    return metrics, metrics[spec.metric], None


def reported_cost(value: Any) -> float | None:
    """A result's ``cost_s`` as compute seconds, or None where the measured run time must
    stand in: a boolean, a string, a negative number, NaN or infinity is no duration. An
    infinite one was taken as it came, and the study's compute spent became inf, every
    ``max_compute_s`` spent by one trial (and, simulated, the clock sent to infinity)."""
    number = real_number(value)
    if number is None:
        return None
    cost = as_float(number)
    return cost if math.isfinite(cost) and cost >= 0 else None


def unused_cost(result: dict) -> str | None:
    """Why a result's ``cost_s`` is not its cost (the measured run time is), for the warning
    that says so; None where it is used or there is none. Every kind of value that is no
    duration is said alike (a string "5", a boolean, NaN, a negative number): one dropped
    silently left the study's compute and budget to another figure than the objective
    meant, with nothing to say why."""
    if "cost_s" not in result or reported_cost(result["cost_s"]) is not None:
        return None
    shown = json.dumps(result["cost_s"], default=str)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return (f"cost_s {shown} is no duration in seconds (a finite number, 0 or more), so the "
            "measured run time is the cost")


def as_float(number: int | float) -> float:
    """A real number as the float a history records; an integer too large for one (10**400
    printed by a command) is infinite, which ``judge`` refuses as the optimised value. A
    plain ``float()`` raised OverflowError in the driver, which stopped it, and every
    resume after it, collecting the same result again."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf
