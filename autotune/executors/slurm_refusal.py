"""What an sbatch refusal means, read from its words, since what to do differs per meaning.

- ``limit``: the user, account or QOS has as many jobs queued as it may submit
  (MaxSubmitJobs): nothing is wrong, a slot frees when a job ends; the trial waits for it.
  SLURM's generic line alone ("Job violates accounting/QOS policy", no ``...SubmitJob...``
  reason beside it) may also mean a job larger or longer than the QOS ever takes, on sites
  that deny such jobs: ``names_submit_limit`` tells the two apart, and a wait on the
  generic line alone is bounded (submit_wait).
- ``options``: the job asked for something the cluster refuses (a partition it does not
  have, an option sbatch does not know, a malformed time): the same submission is refused
  every time, so it is said at once, naming the options, never tried again.
- ``again``: anything else (the controller busy or unreachable): tried a few times.
"""
from __future__ import annotations

import re

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


def refusal_kind(said: str) -> str:
    """``limit``, ``options`` or ``again`` for sbatch's words ``said`` (see the module)."""
    if LIMIT.search(said):
        return "limit"
    if OPTIONS.search(said):
        return "options"
    return "again"


def names_submit_limit(said: str) -> bool:
    """Whether sbatch's words name a submit limit, not only the generic accounting line."""
    return bool(SUBMIT_LIMIT.search(said))


def sbatch_says(text: str) -> str:
    """sbatch's own words, one line: its lines each once, in order, without the
    'sbatch --help' hint (submitit's exception holds sbatch's whole stderr)."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith("Try ")]
    return "; ".join(dict.fromkeys(lines))[:400] or "no message"
