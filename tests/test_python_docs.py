"""The Python docs run as a user would run them: the README's "From Python" snippet and the
notebook example in docs/."""
import os
import re
import subprocess
import sys

from .helpers import REPO, history


def readme_snippet() -> str:
    with open(os.path.join(REPO, "README.md")) as fh:
        text = fh.read()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under 'From Python'"
    return blocks[0]


def test_the_readme_from_python_snippet_runs(tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(readme_snippet())
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best: {'lr':" in out.stdout and "study from-python: random" in out.stdout
    ran = history(str(tmp_path / "runs" / "from-python"))
    assert [r.status for r in ran.trials.values()] == ["ok"] * 12
    assert all(r.job_id.startswith("pid-") for r in ran.trials.values())  # local processes
    own = history(str(tmp_path / "runs" / "own-loop"))
    assert [r.status for r in own.trials.values()] == ["ok"] * 5
    assert all(r.job_id == "external" for r in own.trials.values())


def test_the_notebook_example_loads_a_study_and_plots_it(tmp_path):
    import autotune as at

    from .helpers import study_dict

    d = str(tmp_path / "study")
    at.Study(study_dict(search={"max_trials": 8}, space={"x": {"low": 0.1, "high": 10.0, "log": True},
                                                         "y": {"values": [0.0, 1.0]}}),
             dir=d).run(progress=False)
    out = subprocess.run([sys.executable, os.path.join(REPO, "docs", "notebook.py"), d,
                          str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "8 ok" in out.stdout and "best single trial:" in out.stdout
    for name in ("best_so_far.png", "value_along_parameters.png"):
        assert (tmp_path / name).stat().st_size > 5000
