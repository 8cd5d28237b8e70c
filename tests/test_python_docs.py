"""The Python docs run as a user would run them: the README's "From Python" snippet and the
notebook example in docs/."""
import os
import re
import subprocess
import sys

from .helpers import REPO, history


def readme_snippets() -> list[str]:
    """Every python block of the README's "From Python" section (and its subsections)."""
    with open(os.path.join(REPO, "README.md")) as fh:
        text = fh.read()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under 'From Python'"
    return blocks


def readme_snippet() -> str:
    return readme_snippets()[0]


def run_snippet(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})


def test_the_readme_from_python_snippet_runs(tmp_path):
    out = run_snippet(readme_snippet(), tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best: {'lr':" in out.stdout and "study from-python: random" in out.stdout
    assert "True max_trials (5) reached" in out.stdout
    ran = history(str(tmp_path / "runs" / "from-python"))
    assert [r.status for r in ran.trials.values()] == ["ok"] * 12
    assert all(r.job_id.startswith("pid-") for r in ran.trials.values())  # local processes
    own = history(str(tmp_path / "runs" / "own-loop"))
    assert [r.status for r in own.trials.values()] == ["ok"] * 5
    assert all(r.job_id == "external" for r in own.trials.values())


def test_the_readme_optuna_users_snippet_runs(tmp_path):
    """The "Coming from Optuna" example: create_study, optimize, best_*, load_study."""
    snippets = readme_snippets()
    assert len(snippets) == 2, "a new README python block: give it a test of its own"
    out = run_snippet(snippets[1], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first.startswith("{'x': ") and first.endswith(" 10")
    assert second.endswith(" 15")
    ran = history(str(tmp_path / "runs" / "quadratic"))
    assert [r.status for r in ran.trials.values()] == ["ok"] * 15


def test_the_notebook_example_loads_a_study_and_plots_it(tmp_path):
    import autotune as at

    from .helpers import study_dict

    d = str(tmp_path / "study")
    at.Study(study_dict(search={"max_trials": 8}, space={"x": {"low": 0.1, "high": 10.0, "log": True},
                                                         "y": {"values": [0.0, 1.0]}}),
             dir=d).run(progress=False)
    figs = tmp_path / "figs"  # OUT_DIR not made yet: the script makes it
    out = subprocess.run([sys.executable, os.path.join(REPO, "docs", "notebook.py"), d,
                          str(figs)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "8 ok" in out.stdout and "best single trial:" in out.stdout
    for name in ("best_so_far.png", "value_along_parameters.png"):
        assert (figs / name).stat().st_size > 5000


def test_the_readme_study_file_example_runs_as_it_is(tmp_path):
    """The study file under "Using it" names the built-in demo objective: its space must be
    the parameters that objective reads, so that a user who copies it gets results, not every
    trial failing with a KeyError."""
    with open(os.path.join(REPO, "README.md")) as fh:
        text = fh.read()
    section = text.split("\n## Using it\n", 1)[1]
    block = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[0]
    assert "autotune.jobs.demo:objective" in block
    study = tmp_path / "example.yaml"
    # as it is, but a few trials in the driver's process (the test's time)
    study.write_text(block.replace("max_trials: 40", "max_trials: 6")
                     .replace("kind: local ", "kind: inline "))
    out = subprocess.run([sys.executable, "-m", "autotune", "run", str(study), "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr[-3000:]
    ran = history(str(tmp_path / "runs" / "example"))
    assert [r.status for r in ran.trials.values()] == ["ok"] * 6, [
        r.error for r in ran.trials.values()]
