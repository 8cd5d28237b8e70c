"""The objective contract's types: what a trial is given and what a study asks of it.

Plain data with no behaviour beyond (de)serialisation, so that every other module (the
runner, the stage cache, the executors, the study parser) can depend on it without any of
them depending on each other.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import numbers
import os
import sys
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from typing import Any, Callable

from .errors import StudyError
from .moved import current_name


@dataclass(frozen=True)
class StageSpec:
    """A pretrain: what to run, with which fixed parameters, for how long.

    Only ``core()`` (entry, params, epochs, seed) decides the checkpoint, so where it is cached
    and which resources build it can change without invalidating a cache or a history. Its
    cache key (``key()``) reads ``core()`` as the run does: the parameters that name a file or
    a folder (``paths``, as the entry declares them: ``entry.path_params``) as absolute paths
    from where the runs start (``launch_dir``), and a whole number as itself (``4.0`` is 4):
    two studies with the same relative ``train_dir`` in two directories read two folders,
    and ``scale: 4.0`` trains what ``scale: 4`` does.
    """

    entry: str
    params: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    seed: int = 0
    name: str = "pretrain"
    cache_dir: str | None = None      # absolute; None: the study's own ``cache/``
    executor: dict[str, Any] = field(default_factory=dict)  # overrides of the study's executor
    timeout_s: float | None = None
    paths: tuple[str, ...] = ()       # the params naming a file or folder (entry.path_params)
    launch_dir: str | None = None     # where the runs start (relative paths); None: here

    def core(self) -> dict[str, Any]:
        return {"entry": self.entry, "params": self.params, "epochs": self.epochs, "seed": self.seed}

    def key_core(self) -> dict[str, Any]:
        """``core()`` as the cache key reads it: paths absolute, whole numbers as ints. Paths
        are made absolute by their text alone (no symlink resolved): the driver and the
        stage's job, on other machines, compute the same key."""
        base = self.launch_dir or os.getcwd()
        params = {}
        for name, value in self.params.items():
            if name in self.paths and isinstance(value, str) and value:
                value = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
            params[name] = plain_numbers(value)
        return {**self.core(), "params": params}

    def key(self) -> str:
        text = json.dumps(self.key_core(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cache_root(self, study_dir: str) -> str:
        return self.cache_dir or os.path.join(os.path.abspath(study_dir), "cache")

    def to_dict(self) -> dict[str, Any]:
        return {**self.core(), "name": self.name, "cache_dir": self.cache_dir,
                "executor": dict(self.executor), "timeout_s": self.timeout_s,
                "paths": list(self.paths), "launch_dir": self.launch_dir}

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(self.paths or ()))


def plain_numbers(value: Any) -> Any:
    """A whole float as an int (``4.0`` -> 4), inside lists and mappings too; booleans and
    other values as they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_numbers(v) for v in value]
    return value


@dataclass(frozen=True)
class ObjectiveSpec:
    """What to run and which of its metrics to optimise."""

    metric: str
    mode: str = "min"
    entry: str | None = None
    command: str | None = None
    timeout_s: float | None = None
    python_path: tuple[str, ...] = ()  # directories an entry is imported from (the study's own)
    pretrain: StageSpec | None = None  # two-stage training: built once, given as ctx.pretrained

    def to_dict(self) -> dict:
        out = asdict(self)
        out["pretrain"] = None if self.pretrain is None else self.pretrain.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ObjectiveSpec":
        pretrain = data.get("pretrain")
        return cls(**{**data, "python_path": tuple(data.get("python_path") or ()),
                      "pretrain": StageSpec(**pretrain) if pretrain else None})


class Ctx:
    """What a trial knows about itself besides its parameters.

    ``trial_dir`` is created on first use, so a trial that writes nothing costs no directory
    (thousands of no-op trials a second would otherwise spend most of their time in mkdir).
    """

    FIELDS = ("trial", "trial_dir", "seed", "attempt", "epochs", "pretrained", "resume_from",
              "checkpoint_path", "study_dir", "launch_dir", "study_file_dir", "extra")

    def __init__(self, trial: int, trial_dir: str, seed: int, attempt: int = 0,
                 epochs: int | None = None, pretrained: str | None = None,
                 resume_from: str | None = None, checkpoint_path: str = "",
                 study_dir: str = "", extra: dict | None = None, launch_dir: str = "",
                 study_file_dir: str = ""):
        self.trial = trial
        self._trial_dir = trial_dir
        self._made = False
        self.seed = seed
        self.attempt = attempt
        self.epochs = epochs
        self.pretrained = pretrained
        self.resume_from = resume_from
        self._checkpoint_path = checkpoint_path or os.path.join(trial_dir, "checkpoint.pt")
        self.study_dir = study_dir
        self.launch_dir = launch_dir          # where ``run`` was first started: commands run here
        self.study_file_dir = study_file_dir  # the study file's directory
        self.extra = dict(extra or {})

    @property
    def trial_dir(self) -> str:
        if not self._made:
            os.makedirs(self._trial_dir, exist_ok=True)
            self._made = True
        return self._trial_dir

    @property
    def checkpoint_path(self) -> str:
        """Where this run saves its checkpoint (its directory exists once you ask)."""
        self.trial_dir  # noqa: B018 - creates the directory
        return self._checkpoint_path

    def as_dict(self) -> dict:
        hidden = {"trial_dir": self._trial_dir, "checkpoint_path": self._checkpoint_path}
        return {f: hidden[f] if f in hidden else getattr(self, f) for f in self.FIELDS}

    def __repr__(self) -> str:
        return f"Ctx({self.as_dict()})"


def real_number(value: Any) -> int | float | None:
    """``value`` as a plain ``int`` or ``float`` if it is one real number, else None.

    ML code hands back numpy scalars (``np.float32`` is no ``float``), 0-d arrays and 0-d
    tensors; a history is JSON, so each becomes the plain number it holds before it is
    recorded. Detected by duck typing (``.item()`` on something with no dimensions), so the
    engine never imports torch. Booleans are no numbers here: ``True`` is not a loss.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            inner = item()
        except Exception:  # noqa: BLE001 - an object whose item() fails holds no number
            return None
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return real_number(inner)
    return None


def plain_metrics(result: dict) -> dict:
    """The result as plain JSON data, ready for any executor to serialise and for the
    history to record: every real-number value a plain ``int`` or ``float`` (see
    ``real_number``), and inside lists and mappings too; arrays and tensors as lists
    (``tolist()``), tuples as lists. A value that is none of these raises ``TypeError``
    naming its key (``extra.m[1]``): it could only be recorded as its ``str()``."""
    out = {}
    for key, value in result.items():
        number = real_number(value)
        out[_plain_key(key, str(key))] = (number if number is not None
                                          else plain_json(value, str(key)))
    return out


def plain_json(value: Any, where: str, _path: tuple[int, ...] = ()) -> Any:
    """``value`` (found at result key ``where``) as plain JSON data; see ``plain_metrics``."""
    if value is None or isinstance(value, (str, bool)):
        return str(value) if isinstance(value, str) else value  # np.str_ becomes a str
    if isinstance(value, os.PathLike):  # a checkpoint's pathlib.Path: its path
        return str(os.fspath(value))
    number = real_number(value)
    if number is not None:
        return number
    if id(value) in _path:
        raise TypeError(f"result key {where!r} holds itself: it cannot be stored as JSON")
    inner = (*_path, id(value))
    if isinstance(value, Mapping):
        return {_plain_key(k, where): plain_json(v, f"{where}.{k}", inner)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, f"{where}[{i}]", inner) for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", None) is not None:  # numpy, torch
        try:
            listed = tolist()
        except Exception:  # noqa: BLE001 - an object whose tolist() fails is refused below
            listed = value
        if listed is not value:
            return plain_json(listed, where, inner)
    raise TypeError(f"result key {where!r}: a {type(value).__name__} cannot be stored as JSON "
                    "(expected numbers, strings, booleans, None, paths, lists, dicts or arrays)")


def _plain_key(key: Any, where: str) -> str:
    """A mapping key as JSON writes it (1 -> "1"): what the history reads back."""
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    number = real_number(key)
    if number is not None:
        return json.dumps(number)
    raise TypeError(f"result key {where!r}: the key {_short(key)} ({type(key).__name__}) "
                    "cannot be stored as JSON (expected strings or numbers as keys)")


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def trial_seed(study_seed: int, trial: int) -> int:
    """A per-trial seed: distinct per trial, the same for every attempt of it."""
    return (study_seed * 1_000_003 + trial * 7919 + 17) % (2**31 - 1)


def load_entry(entry: str, python_path: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Import ``module:function``; a bad entry is a study-file mistake."""
    module_name, sep, func_name = entry.partition(":")
    if not sep or not module_name or not func_name:
        raise StudyError(f"objective.entry: expected 'package.module:function', got {entry!r}")
    for path in python_path:
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = _import(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        raise StudyError(f"objective.entry: cannot import module {module_name!r} "
                         f"({type(exc).__name__}: {exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise StudyError(f"objective.entry: module {module_name!r} has no function {func_name!r}")
    return func


def _import(module_name: str) -> Any:
    """Import a module by name; a moved module's old name (in older histories) finds it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        now = current_name(module_name)
        if now is None or not (module_name == missing or module_name.startswith(missing + ".")):
            raise
        return importlib.import_module(now)
