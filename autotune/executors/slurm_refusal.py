"""What an sbatch refusal means, read from its words, since what to do differs per meaning.

- ``limit``: the user, account or QOS has as many jobs queued as it may submit
  (MaxSubmitJobs): nothing is wrong, a slot frees when a job ends; the trial waits for it.
  SLURM's generic line alone ("Job violates accounting/QOS policy", no ``...SubmitJob...``
  reason beside it) may also mean a job larger or longer than the QOS ever takes, on sites
  that deny such jobs: ``names_submit_limit`` tells the two apart, and a wait on the
  generic line alone is bounded (submit_wait).
- ``job_limit``: the words name a limit on what one job asks for (``QOSMaxWallDurationPerJobLimit``,
  ``QOSMaxGRESPerJob``, ``AssocMaxCpuPerJobLimit``, ``QOSMaxMemoryPerNode``, ``QOSMinGRES``,
  ...), beside the generic line, on a site that denies such jobs (``DenyOnLimit``): it never
  clears for this job however long it waits, so it is said at once, as options the cluster
  refuses are, naming the limit and the study's key to change (``limit_advice``).
- ``options``: the job asked for something the cluster refuses (a partition it does not
  have, an option sbatch does not know, a malformed time): the same submission is refused
  every time, so it is said at once, naming the options, never tried again.
- ``again``: anything else (the controller busy or unreachable): tried a few times.
"""
from __future__ import annotations

import re
from typing import Any

#: SLURM's reasons for a submission refused at a submit limit; the generic line
#: ("Job violates accounting/QOS policy (job submit limit, ...)") comes with them or alone
LIMIT = re.compile(r"MaxSubmitJob|Job violates accounting/QOS policy|job submit limit",
                   re.IGNORECASE)
#: the reasons that name a submit limit itself (QOSMaxSubmitJobPerUserLimit,
#: AssocMaxSubmitJobLimit, AssocGrpSubmitJobsLimit, ...): a slot frees as jobs end
SUBMIT_LIMIT = re.compile(r"SubmitJob")
#: a refusal of what the job asks for: sbatch's option parsing and the controller's checks
OPTIONS = re.compile(r"invalid|unrecognized option|unknown option|requires an argument"
                     r"|Requested node configuration is not available"
                     r"|Requested partition configuration not available"
                     r"|More processors requested than permitted", re.IGNORECASE)


#: SLURM's reasons for a limit on one job's request (job_state_reason.c): a maximum per job
#: or per node (QOSMaxWallDurationPerJobLimit, QOSMaxGRESPerJob, QOSMaxCpuPerJobLimit,
#: QOSMaxNodePerJobLimit, QOSMaxMemoryPerJob, AssocMaxWallDurationPerJobLimit,
#: QOSMaxCpuMinutesPerJobLimit, QOSMaxGRESPerNode, ...) or a minimum (QOSMinGRES,
#: QOSMinCpuNotSatisfied, ...); not the per-user or group limits (...PerUser..., ...Grp...),
#: which other jobs' ends may clear
JOB_LIMIT = re.compile(r"\b(?:QOS|Assoc)(?:Max\w*?Per(?:Job|Node)|Min)\w*")


def refusal_kind(said: str) -> str:
    """``job_limit``, ``limit``, ``options`` or ``again`` for sbatch's words ``said`` (see
    the module)."""
    if JOB_LIMIT.search(said):
        return "job_limit"
    if LIMIT.search(said):
        return "limit"
    if OPTIONS.search(said):
        return "options"
    return "again"


def job_limit(said: str) -> str:
    """The per-job limit sbatch's words name ("" for none)."""
    found = JOB_LIMIT.search(said)
    return found.group(0) if found else ""


def limit_advice(limit: str, o: dict[str, Any]) -> str:
    """What to change in the executor options ``o`` for a job within ``limit`` (a JOB_LIMIT
    reason), with the value asked now."""
    from .slurm_shape import job_shape

    shape = job_shape(o)
    minutes = int(o["time_limit_min"]) if o.get("time_limit_min") else 60
    gpus = (f"gpus_per_task (now {shape.gpus_per_task})" if shape.gpus_per_task
            else f"gpus_per_node (now {shape.gpus_per_node})")
    mem = (f"mem_gb (now {o['mem_gb']:g})" if o.get("mem_gb")
           else "mem_gb (not set: the partition's default applies)")
    cpus = (f"cpus_per_task (now {shape.cpus_per_task}) or tasks_per_node (now "
            f"{shape.tasks_per_node})")
    name = limit.lower()
    verb = "raise" if re.match(r"(QOS|Assoc)Min", limit) else "lower"
    if "minutes" in name:  # a resource times the time limit
        what = next((w for k, w in (("gres", gpus), ("cpu", cpus), ("mem", mem)) if k in name),
                    f"nodes (now {shape.nodes})")
        return f"{verb} time_limit_min (now {minutes}) or {what}"
    if "wall" in name:
        return f"{verb} time_limit_min (now {minutes})"
    for key, what in (("gres", gpus), ("cpu", cpus), ("mem", mem),
                      ("node", f"nodes (now {shape.nodes})")):
        if key in name:
            return f"{verb} {what}"
    return "change what the job asks for (sbatch_extra, sbatch_flags)"


def job_limit_line(said: str, o: dict[str, Any]) -> str:
    """What the refusal line adds where sbatch names a per-job limit ("" where it names none)."""
    limit = job_limit(said)
    if not limit:
        return ""
    return (f"; {limit} is a limit of the QOS or account on one job, which this job breaks "
            f"however long it waits: {limit_advice(limit, o)} (sacctmgr show qos; sacctmgr "
            "show assoc user=$USER give the limit)")


def names_submit_limit(said: str) -> bool:
    """Whether sbatch's words name a submit limit, not only the generic accounting line."""
    return bool(SUBMIT_LIMIT.search(said))


def sbatch_says(text: str) -> str:
    """sbatch's own words, one line: its lines each once, in order, without the
    'sbatch --help' hint (submitit's exception holds sbatch's whole stderr)."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith("Try ")]
    return "; ".join(dict.fromkeys(lines))[:400] or "no message"
