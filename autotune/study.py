"""The study file, read strictly into typed settings.

Every mistake is found here, before a directory is made or a line written: unknown keys,
wrong types, empty lists, bad ranges, unknown algorithms or executors, entries that cannot
be imported. Searcher and executor keys are checked against what each one declares.
"""
from __future__ import annotations

import dataclasses
import os
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .compare_section import COMPARE_KEYS, read_compare_section
from .config import check, describe, optional_mapping, reject_unknown, require_mapping, take
from .errors import StudyError
from .executors import EXECUTORS
from .contract import Ctx, ObjectiveSpec, load_entry
from .runner import check_command
from .searchers import SEARCHERS, Searcher, SearchSettings
from .searchers.mf_common import FIDELITY_KEYS
from .space import SearchSpace, parse_space
from .stages import as_stage_error, check_params, parse_stages, stage_options
from .yamlfile import read_yaml

if TYPE_CHECKING:
    from .history import History

TOP_KEYS = ["name", "description", "objective", "space", "search", "executor", "retries",
            "max_failures", "stages", "compare"]
MAX_FAILURES = 5  # the first trials to end all failed: stop rather than burn the rest
OBJECTIVE_KEYS = ["entry", "command", "metric", "mode", "timeout_s"]
SEARCH_KEYS = ["algorithm", "seed", "max_trials", "max_compute_s"]
EXECUTOR_KEYS = ["kind", "max_concurrent"]


#: objective.mode as written -> as recorded: Optuna's direction words mean the same, and are
#: read here, the one place the mode is parsed, so the history, a resume's comparison and
#: every reader see only 'min' or 'max' (a study file saying 'minimize' resumes a 'min' one)
MODES = {"min": "min", "max": "max", "minimize": "min", "maximize": "max"}

#: Optuna's words for what a study says otherwise, as a study written from Optuna habit has them
OPTUNA_NAMES = {"direction": "Optuna's direction is objective.mode here: 'min' or 'max' "
                              "('minimize', 'maximize' too)",
                "n_trials": "Optuna's n_trials is search.max_trials here",
                "sampler": "Optuna's sampler is search.algorithm here"}


def elsewhere(here: str, algorithm: str | None = None, kind: str | None = None) -> dict[str, str]:
    """Where a key that is unknown in section ``here`` ("" for the top level) belongs, for
    its error line: another section, or another algorithm's or executor kind's options."""
    out: dict[str, str] = {}
    if algorithm is not None:
        owners: dict[str, list[str]] = {}
        for name, cls in sorted(SEARCHERS.items()):
            for option in cls.options:
                owners.setdefault(option, []).append(name)
        out.update({k: f"an option of {', '.join(v)}, not of {algorithm}"
                    for k, v in owners.items()})
    if kind is not None:
        out.update(executor_elsewhere(kind))
    for section, keys in (("objective", OBJECTIVE_KEYS), ("search", SEARCH_KEYS),
                          ("executor", EXECUTOR_KEYS)):
        if section != here:
            out.update({k: f"it belongs under {section}" for k in keys})
    if here:
        out.update({k: "it belongs at the top level" for k in ("retries", "max_failures")})
    out.update({k: v for k, v in OPTUNA_NAMES.items() if k not in out})
    if here == "search" and algorithm is not None and "fidelity" in SEARCHERS[algorithm].options:
        # eta: 3 beside the algorithm, as papers write it, instead of inside fidelity:
        out.update({k: "it belongs under search.fidelity: {min: .., max: .., eta: ..}"
                    for k in FIDELITY_KEYS})
    return out


def executor_elsewhere(kind: str) -> dict[str, str]:
    """Where an executor option that kind ``kind`` lacks belongs (``partition``: an option of
    slurm), for ``executor:`` and the pretrain's ``stages.pretrain.executor:`` alike."""
    owners: dict[str, list[str]] = {}
    for name, cls in sorted(EXECUTORS.items()):
        for option in cls.options:
            owners.setdefault(option, []).append(name)
    out = {k: f"an option of executor kind {', '.join(v)}, not of {kind}"
           for k, v in owners.items()}
    if kind in EXECUTORS:  # the scheduler's own word for an option: what it is here
        out.update(EXECUTORS[kind].other_names)
    return out


@dataclass
class Study:
    name: str
    objective: ObjectiveSpec
    space: SearchSpace
    algorithm: str = "random"
    seed: int = 0
    max_trials: int | None = None
    max_compute_s: float | None = None   # stop starting trials once this much compute is spent
    search_options: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    max_concurrent: int = 1
    executor_options: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    max_failures: int = MAX_FAILURES  # 0: never stop for failures
    source: str = ""                 # the file it came from
    raw: dict[str, Any] = field(default_factory=dict)
    #: command fields no trial fills, as (field, why), where parse_study was told to let
    #: them through: the driver refuses them in a new study and warns of them in one that an
    #: older autotune started with this very command (``unfilled_fields``)
    unfilled: list[tuple[str, str]] = field(default_factory=list)
    #: one run of a comparison (``autotune compare``): its command may name fields, such as
    #: ``{resume_from}``, that only the other algorithms' runs fill (``unfilled_fields``)
    compared: bool = False

    def settings(self) -> SearchSettings:
        return SearchSettings(self.space, self.seed, self.max_concurrent, self.max_trials,
                              self.max_compute_s, dict(self.search_options))

    def make_searcher(self) -> Searcher:
        return SEARCHERS[self.algorithm](self.settings())

    def identity(self) -> dict[str, Any]:
        """What a study directory must keep: change any of it and replay means nothing."""
        return {"space": self.space.spec(), "algorithm": self.algorithm, "seed": self.seed,
                "search_options": self.search_options, "metric": self.objective.metric,
                "mode": self.objective.mode,
                "pretrain": None if self.objective.pretrain is None else self.objective.pretrain.core()}


def load_study(path: str, tolerate_unfilled: bool = False) -> Study:
    raw = read_yaml(path)
    if raw is None:
        raise StudyError(f"{path}: the file is empty")
    study = parse_study(raw, default_name=os.path.splitext(os.path.basename(path))[0],
                        base_dir=os.path.dirname(os.path.abspath(path)),
                        tolerate_unfilled=tolerate_unfilled)
    read_compare_section(raw)  # read by ``autotune compare`` only, but a mistake all the same
    study.source = os.path.abspath(path)
    return study


def recorded_study(history: "History", load_code: bool = True) -> Study:
    """The study a history records, rebuilt from its study record: the study file's mapping
    as it was started, read as the CLI read it (modules beside the study file, else beside
    where it was launched), with the objective a resume accepted in place of the first
    (``--accept-objective-change``). What a report needs (``load_code=False``) and what
    continues a study from its directory alone (``autotune.load_study``)."""
    record = history.study
    config = record.get("config")
    if not isinstance(config, dict):
        raise StudyError("the history's study record holds no study definition to rebuild")
    objective = {**(config.get("objective") or {}), **recorded_objective(history)}
    config = {**config, "objective": {k: v for k, v in objective.items() if v is not None}}
    # a section an older autotune took as empty (search: 0, executor: '') is read as it ran
    config.update({key: None for key in OPTIONAL_SECTIONS
                   if key in config and not config[key] and not isinstance(config[key], dict)})
    config = loose_pretrain_sections(config)
    source = str(record.get("source") or "")
    study = parse_study(config, default_name=str(record.get("name") or "study"),
                        base_dir=os.path.dirname(source) if source else record.get("launch_dir"),
                        load_code=load_code, compared=compared_run(record),
                        tolerate_unfilled=True,  # the driver judges it
                        check_data=False)  # its data was checked as it started
    study.source = source
    if study.objective.pretrain is not None:  # its relative paths: where it was launched
        study.objective = dataclasses.replace(study.objective, pretrain=dataclasses.replace(
            study.objective.pretrain, launch_dir=record.get("launch_dir") or None))
    return study


def loose_pretrain_sections(config: dict) -> dict:
    """``stages.pretrain.params: 0`` (or executor: '') an older autotune took as empty, read
    as it ran (``~``): the pretrain it recorded ran with none, and a history stays readable."""
    stages = config.get("stages")
    pre = stages.get("pretrain") if isinstance(stages, dict) else None
    if not isinstance(pre, dict):
        return config
    loose = {key: None for key in ("params", "executor")
             if key in pre and not pre[key] and not isinstance(pre[key], dict)}
    return {**config, "stages": {**stages, "pretrain": {**pre, **loose}}} if loose else config


def compared_run(record: dict) -> bool:
    """Whether a study record is one run of a comparison: marked so, or (written before the
    mark) named as ``compare`` names its runs, ``<study>-<algorithm>-s<seed>``."""
    identity = record.get("identity") or {}
    named = f"-{identity.get('algorithm')}-s{identity.get('seed')}"
    return bool(record.get("compared")) or str(record.get("name") or "").endswith(named)


def recorded_objective(history: "History") -> dict[str, str | None]:
    """The entry and command the study now runs: the first ones, or the last a resume
    recorded as accepted in their place."""
    objective = dict(history.study.get("config", {}).get("objective") or {})
    for note in history.notes:
        if note.get("e") == "resume" and isinstance(note.get("objective"), dict):
            objective = note["objective"]
    return {key: objective.get(key) for key in ("entry", "command")}


def parse_study(raw: Any, default_name: str = "study", base_dir: str | None = None,
                load_code: bool = True, compared: bool = False,
                tolerate_unfilled: bool = False, check_data: bool = True) -> Study:
    """The study, checked; ``load_code=False`` skips importing the objective's (and the
    pretrain's) module, for readers of a history (status, report) that never run a trial
    and must not need the training code's dependencies (torch on a login node).
    ``compared``: one run of a comparison, whose command the other algorithms share.
    ``tolerate_unfilled``: a command field no trial fills is left in ``Study.unfilled`` for
    the driver, which knows whether an older autotune started the directory with it.
    ``check_data``: the entries' own checks of what they are given (``stages.check_params``:
    data folders read from the current directory); False for a study rebuilt from its
    history, whose trials run where it was first launched and whose reader may be elsewhere."""
    raw = require_mapping(raw, "study")
    reject_unknown(raw, TOP_KEYS, "", elsewhere(""))
    name = take(raw, "name", "str", "", default_name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise StudyError(f"name: expected letters, digits, '_', '.' or '-', got {describe(name)}")
    if "objective" not in raw:
        raise StudyError("objective: missing (expected a mapping with entry or command, and metric)")
    if "space" not in raw:
        raise StudyError("space: missing (expected a mapping of parameters)")
    space = parse_space(raw["space"])
    paths = tuple(dict.fromkeys(p for p in (os.getcwd(), base_dir) if p))
    objective = parse_objective(raw["objective"], paths, load_code)
    if objective.command is not None:
        check_command(objective.command, space.names)
    elif load_code and check_data:  # the entry's own check of its values (stages.check_params)
        check_params(load_entry(objective.entry, paths), space.fixed,
                     [p.name for p in space.free], "space")
    study = Study(name=name, objective=objective, space=space, raw=raw, compared=compared)
    parse_search(optional_mapping(raw, "search"), study)
    parse_executor(optional_mapping(raw, "executor"), study)
    study.retries = take(raw, "retries", "nonneg-int", "", 0)
    study.max_failures = take(raw, "max_failures", "nonneg-int", "", MAX_FAILURES)
    reject_unknown(optional_mapping(raw, "compare"), COMPARE_KEYS, "compare")
    if raw.get("stages") is not None:
        stage = parse_stages(raw["stages"], paths, EXECUTORS[study.executor].options, base_dir,
                             load_code, check_data, executor_elsewhere(study.executor))
        study.objective = dataclasses.replace(study.objective, pretrain=stage)
        if stage is not None and stage.executor:
            check_stage_executor(study, stage.executor)
    if objective.command is not None and load_code:  # a recorded study is read as it was
        study.unfilled = unfilled_fields(objective.command, study, compared)
        if study.unfilled and not tolerate_unfilled:
            raise StudyError(unfilled_refusal(*study.unfilled[0]))
    if objective.command is not None:  # once the fidelity and the pretrain are known
        try:
            check_command_values(objective.command, space, sample_ctx(study))
        except StudyError as exc:  # ({epochs:d} with no epochs): it cannot run, whoever started it
            for name, why in study.unfilled:
                if f"{{{name}" in str(exc):
                    raise StudyError(unfilled_refusal(name, why)) from None
            raise
    check_engine_names(study)
    study.make_searcher()  # a searcher refuses what it cannot search (e.g. grid over a range)
    return study


#: the sections a study file may leave out, each a mapping when given
OPTIONAL_SECTIONS = ("search", "executor", "compare")


def sample_ctx(study: Study) -> Ctx:
    """A trial's fields as this study fills them (``epochs`` an int under a fidelity, else
    None; ``pretrained`` a path under a pretrain, else None), to try a command's format
    specs on: ``{epochs:d}`` is right where the search sets the epochs."""
    fidelity = study.search_options.get("fidelity") or {}
    epochs = fidelity.get("max") if isinstance(fidelity, dict) else None
    pretrained = "/pretrained/checkpoint.pt" if study.objective.pretrain is not None else None
    return Ctx(trial=0, trial_dir="/trial", seed=0, study_dir="/study", epochs=epochs,
               pretrained=pretrained, launch_dir="/launch", study_file_dir="/study-file",
               extra=sample_extra(study))


def sample_extra(study: Study) -> dict[str, Any]:
    """What ``ctx.extra`` holds in every trial of this study, with rank 0's values: a SLURM
    job's ``requeues`` and ``slurm_job_id``; a multi-rank trial's (``tasks_per_trial`` > 1,
    ``nodes``/``tasks_per_node`` > 1, or ``launch: node``) ``rank``, ``local_rank``,
    ``world_size``, ``node_rank`` and ``nnodes`` (ranks.RankEnv.extra); else nothing."""
    from .executors.slurm_shape import job_shape
    from .ranks import RankEnv

    opts = study.executor_options
    extra: dict[str, Any] = {}
    env = None
    if study.executor == "slurm":
        extra.update(requeues=0, slurm_job_id="1")
        shape = job_shape(opts)
        if shape.multi:
            per_node = shape.tasks_per_node if shape.launch == "task" else 1
            env = RankEnv(0, 0, shape.processes, per_node, 0, shape.nodes, "", 0)
    elif study.executor == "local":
        ranks = int(opts.get("tasks_per_trial") or 1)
        if opts.get("launch", "task") == "node":
            env = RankEnv(0, 0, 1, 1, 0, 1, "", 0)
        elif ranks > 1:
            env = RankEnv(0, 0, ranks, ranks, 0, 1, "", 0)
    if env is not None:
        extra.update(env.extra())
    return extra


#: why a field a command may name holds None in a trial
EMPTY_FIELD = {"epochs": "the search sets no epochs (no search.fidelity)",
               "pretrained": "the study has no stages.pretrain",
               "resume_from": "a trial that continues no other's checkpoint has none (no "
                              "search.fidelity: no trial does)"}


def unfilled_fields(template: str, study: Study, compared: bool = False
                    ) -> list[tuple[str, str]]:
    """The command fields no trial of this study fills (``{pretrained}`` without a pretrain,
    ``{epochs}`` and ``{resume_from}`` without a fidelity), as (field, why): a new study is
    refused them, as they would reach every trial empty. One empty only for some trials
    (``{resume_from}`` of a trial that continues none) is given as an empty string. In a
    comparison another algorithm's runs may fill ``{resume_from}``, so it is not one there.
    Older versions accepted them (every trial got an empty field), so a directory one of
    them started is resumed with a warning instead (``Driver``)."""
    fidelity = study.search_options.get("fidelity")
    empty = {"pretrained": study.objective.pretrain is None,
             "epochs": not fidelity, "resume_from": not fidelity and not compared}
    found: dict[str, str] = {}
    for _, name, _, _ in string.Formatter().parse(template):
        base = (name or "").split(".")[0].split("[")[0]
        if empty.get(base) and base not in study.space.names:
            found.setdefault(base, EMPTY_FIELD[base])
    return list(found.items())


def unfilled_refusal(name: str, why: str) -> str:
    """A new study's refusal of a command field no trial fills."""
    return (f"objective.command: {{{name}}} would be empty in every trial: {why}; remove it "
            "from the command")


def unfilled_warning(fields: list[tuple[str, str]]) -> str:
    """The one warning of a resume under a command an older autotune accepted with fields
    no trial fills: it goes on as it was started (each trial gets them empty)."""
    names = ", ".join(f"{{{name}}}" for name, _ in fields)
    whys = "; ".join(why for _, why in fields)
    return (f"objective.command: {names} {'is' if len(fields) == 1 else 'are'} empty in every "
            f"trial ({whys}); an older autotune started this study so and is resumed as it "
            f"was, but a new study with this command is refused: remove "
            f"{'it' if len(fields) == 1 else 'them'} before the next one")


def check_ctx_fields(template: str, ctx: Ctx) -> None:
    """A format spec on a field the engine fills must suit the value it gets: refused here
    naming that field (it was blamed on the first parameter's first value, and
    ``{epochs:d}`` was refused although every trial of a fidelity search has its epochs)."""
    from .objective import format_command

    for _, name, spec, conversion in string.Formatter().parse(template):
        base = (name or "").split(".")[0].split("[")[0]
        if base not in Ctx.FIELDS:
            continue
        if base == "extra":
            check_extra_keys(name, ctx.extra)
        field = ("{" + name + (f"!{conversion}" if conversion else "")
                 + (f":{spec}" if spec else "") + "}")
        try:
            format_command(field, {}, ctx)
        except (ValueError, TypeError, AttributeError, LookupError) as exc:
            value = ctx.as_dict()[base]
            why = f": {EMPTY_FIELD[base]}" if value is None and base in EMPTY_FIELD else ""
            shown = "empty" if value is None else repr(value)
            raise StudyError(f"objective.command: {field}: {exc} ({base} is {shown} in a "
                             f"trial{why})") from None


def check_extra_keys(name: str, extra: dict) -> None:
    """``{extra[key]}`` must name a key every trial of this study has in ``ctx.extra``."""
    import _string

    _, rest = _string.formatter_field_name_split(name)
    for is_attr, key in rest:
        if is_attr or not isinstance(key, str) or key in extra:
            return  # ``extra.x`` and ``extra[0]`` fail below, as any other field
        held = ", ".join(sorted(extra)) or "nothing"
        raise StudyError(
            f"objective.command: {{{name}}}: no trial of this study has ctx.extra[{key!r}] "
            f"(its extra holds {held}; rank and world_size come with a multi-rank trial: "
            "tasks_per_trial above 1, nodes or tasks_per_node above 1, or launch: node)")


def check_command_values(template: str, space: SearchSpace, ctx: Ctx) -> None:
    """Format the command with every declared value of every parameter (the others at their
    first), so a format spec a value cannot take (``{opt:.2e}`` with a string) is found now,
    not in every trial; the engine's fields take the values ``ctx`` gives them."""
    from .objective import format_command
    from .space import Choice, Fixed, Range

    check_ctx_fields(template, ctx)

    def values(p: Any) -> list:
        if isinstance(p, Choice):
            return list(p.values)
        if isinstance(p, Range):
            return [int(p.low), int(p.high)] if p.integer else [float(p.low), float(p.high)]
        return [p.value] if isinstance(p, Fixed) else []

    first = {name: values(p)[0] for name, p in space.params.items()}
    # each parameter's fields on their own first, so that a spec one parameter's value cannot
    # take is blamed on that parameter, not on whichever one was being varied
    for _, name, spec, conversion in string.Formatter().parse(template):
        base = (name or "").split(".")[0].split("[")[0]
        if base not in space.params:
            continue
        field = ("{" + name + (f"!{conversion}" if conversion else "")
                 + (f":{spec}" if spec else "") + "}")
        for value in values(space.params[base]):
            try:
                format_command(field, {**first, base: value}, ctx)
            except (ValueError, TypeError, AttributeError, LookupError) as exc:
                raise StudyError(f"objective.command: {exc} (parameter {base} = {value!r})"
                                 ) from None
    for name, p in space.params.items():
        for value in values(p):
            try:
                format_command(template, {**first, name: value}, ctx)
            except (ValueError, TypeError, AttributeError, LookupError) as exc:  # {x.y}, {x[0]}
                raise StudyError(f"objective.command: {exc} (parameter {name} = {value!r})"
                                 ) from None


def check_engine_names(study: Study) -> None:
    """A parameter named like a field the engine fills would silently win over it (a command's
    ``{seed}``, or ``epochs`` read from the parameters while the search sets ctx.epochs)."""
    fidelity = "fidelity" in study.search_options
    for name in study.space.names:
        if name == "epochs" and fidelity:
            raise StudyError("space.epochs: clashes with search.fidelity, which sets each "
                             "trial's epochs (ctx.epochs, {epochs}); remove the parameter "
                             "or rename it")
        if study.objective.command is not None and name in Ctx.FIELDS and name != "epochs":
            raise StudyError(f"space.{name}: clashes with the field {{{name}}} the engine fills "
                             "in objective.command; rename the parameter")


def parse_objective(raw: Any, python_path: tuple[str, ...],
                    load_code: bool = True) -> ObjectiveSpec:
    raw = require_mapping(raw, "objective")
    reject_unknown(raw, OBJECTIVE_KEYS, "objective", elsewhere("objective"))
    entry = take(raw, "entry", "str", "objective", None)
    command = take(raw, "command", "str", "objective", None)
    if (entry is None) == (command is None):
        raise StudyError("objective: expected exactly one of 'entry' (module:function) or 'command'")
    metric = take(raw, "metric", "str", "objective")
    mode = MODES.get(take(raw, "mode", "str", "objective", "min"))
    if mode is None:
        raise StudyError(f"objective.mode: expected 'min' or 'max' (or 'minimize', "
                         f"'maximize'), got {describe(raw['mode'])}")
    timeout = take(raw, "timeout_s", "positive-number", "objective", None)
    if entry is not None and load_code:
        load_entry(entry, python_path)
    return ObjectiveSpec(metric=metric, mode=mode, entry=entry, command=command,
                         timeout_s=timeout, python_path=python_path)


def chosen_class(raw: dict, section: str, key: str, default: str,
                 registry: dict[str, Any], common: list[str]) -> tuple[str, Any]:
    """The plug-in a section names by ``key`` (search.algorithm, executor.kind), once the
    section's keys are checked against the common ones and that class's own options: a
    key of another algorithm or kind is named as such, not only as unknown."""
    name = take(raw, key, "str", section, default)
    if name not in registry:
        raise StudyError(f"{section}.{key}: unknown {describe(name)} "
                         f"(expected one of: {', '.join(sorted(registry))})")
    cls = registry[name]
    # ``key`` is elsewhere's own keyword for it (algorithm=, kind=)
    reject_unknown(raw, common + list(cls.options), section, elsewhere(section, **{key: name}))
    return name, cls


def own_options(raw: dict, section: str, cls: Any) -> dict[str, Any]:
    """The options of the chosen class that the section sets, each read as its kind."""
    return {k: take(raw, k, kind, section) for k, kind in cls.options.items()
            if raw.get(k) is not None}


def parse_search(raw: dict, study: Study) -> None:
    study.algorithm, cls = chosen_class(raw, "search", "algorithm", "random", SEARCHERS,
                                        SEARCH_KEYS)
    # numpy's seed sequences (every seeded searcher's draws) take no negative seed
    study.seed = take(raw, "seed", "nonneg-int", "search", 0)
    study.max_trials = take(raw, "max_trials", "positive-int", "search", None)
    study.max_compute_s = take(raw, "max_compute_s", "positive-number", "search", None)
    study.search_options = own_options(raw, "search", cls)


def parse_executor(raw: dict, study: Study) -> None:
    study.executor, cls = chosen_class(raw, "executor", "kind", "local", EXECUTORS,
                                       EXECUTOR_KEYS)
    study.max_concurrent = take(raw, "max_concurrent", "positive-int", "executor", 1)
    study.executor_options = own_options(raw, "executor", cls)
    cls.check_options(study.executor_options)


def check_stage_executor(study: Study, overrides: dict[str, Any]) -> None:
    """The pretrain's executor options (the study's with its own in their place) pass the
    executor's checks while the file is read, as the study's do: found only as the stage's
    job was made, a bad one came after the study was written, named as the study's key."""
    try:
        EXECUTORS[study.executor].check_options(stage_options(study.executor_options, overrides))
    except StudyError as exc:
        raise as_stage_error(exc) from None


__all__ = ["Study", "load_study", "parse_study", "check"]
