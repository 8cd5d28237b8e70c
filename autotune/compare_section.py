"""The ``compare:`` section of a study file, checked alone: what ``autotune compare`` reads
from it (the algorithms, seeds, budget and each algorithm's options), refused where it is
wrong by every command that reads the file, so that a mistake in it is one line at ``run``
too rather than at the comparison days later. The command line's overrides are compare.py's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import check, describe, hint, optional_mapping, reject_unknown, take
from .errors import StudyError
from .searchers import SEARCHERS

#: the section's keys (study.py refuses others as it reads the file)
COMPARE_KEYS = ["algorithms", "seeds", "budget_s", "options"]

#: the most runs one comparison holds (algorithms x seeds): they run one after another, each
#: checked before the first starts, so 10**8 seeds looked hung rather than being refused
MAX_RUNS = 1000

#: search keys every run of a comparison gets alike: not an algorithm's own option
SET_BY_COMPARE = {"algorithm": "the algorithm is the option's name",
                  "seed": "--seeds or compare.seeds",
                  "max_trials": "--budget or compare.budget_s, else the study's search keys",
                  "max_compute_s": "--budget or compare.budget_s, else the study's search keys"}


@dataclass
class CompareSection:
    algorithms: list[str] | None = None
    seeds: int = 1
    budget_s: float | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


def algorithm_names(names: list, source: str, given: str | None) -> list[str]:
    """The algorithms of ``--algorithms`` (``given``, as typed) or ``compare.algorithms``,
    checked: names of searchers, none empty, none twice."""
    for name in names:
        if not isinstance(name, str):
            raise StudyError(f"{source}: expected algorithm names, got {describe(name)}")
    names = [n.strip() for n in names]
    if "" in names:  # "axis,,random", a trailing comma, or "" in the study file's list
        where = (f"in {given!r}" if given else
                 f"(item {names.index('') + 1} of {len(names)})")
        raise StudyError(f"{source}: the list has an empty name {where}; give the algorithm "
                         "names separated by single commas")
    for name in names:
        if name not in SEARCHERS:
            raise StudyError(f"{source}: unknown {name!r}{hint(name, sorted(SEARCHERS))} "
                             f"(expected some of: {', '.join(sorted(SEARCHERS))})")
        if names.count(name) > 1:  # its one directory would be counted as two runs
            raise StudyError(f"{source}: {name!r} given twice (use --seeds for several runs)")
    return names


def too_many_runs(source: str, seeds: int, algorithms: int) -> str:
    """The refusal of a comparison of more than ``MAX_RUNS`` runs."""
    runs = seeds * algorithms
    per = (f"{seeds} seeds x {algorithms} algorithms is {runs} runs" if algorithms > 1 else
           f"{seeds} seeds is {runs} runs")
    return (f"{source}: {per}, run one after another; a comparison holds at most {MAX_RUNS}: "
            "give fewer seeds")


def read_compare_section(raw: dict) -> CompareSection:
    """The study file's ``compare:`` section (``raw``: the whole file), every value checked."""
    section = optional_mapping(raw, "compare")
    reject_unknown(section, COMPARE_KEYS, "compare")
    listed = take(section, "algorithms", "list", "compare", None)
    if listed:
        listed = algorithm_names(listed, "compare.algorithms", None)
    seeds = take(section, "seeds", "positive-int", "compare", 1)
    if seeds > MAX_RUNS:
        raise StudyError(too_many_runs("compare.seeds", seeds, 1))
    budget = take(section, "budget_s", "positive-number", "compare", None)
    options = optional_mapping(section, "options", "compare")
    for name, opts in options.items():
        if name not in SEARCHERS:  # a misspelt name would leave its options silently unused
            raise StudyError(f"compare.options.{name}: unknown algorithm"
                             f"{hint(name, sorted(SEARCHERS))} (expected some of: "
                             f"{', '.join(sorted(SEARCHERS))})")
        check(opts, "mapping", f"compare.options.{name}")
        for key in opts:
            if key in SET_BY_COMPARE:  # each run's would be overwritten: the same for all
                raise StudyError(f"compare.options.{name}.{key}: set by compare for every run "
                                 f"alike ({SET_BY_COMPARE[key]}); remove it")
        reject_unknown(opts, list(SEARCHERS[name].options), f"compare.options.{name}")
    return CompareSection(listed or None, seeds, budget, options)
