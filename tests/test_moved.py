"""Moved modules: old entry strings in histories and study files keep resolving, and the engine
never imports the optional subpackages."""
import os
import subprocess
import sys
import textwrap

import pytest

from autotune.errors import StudyError
from autotune.moved import current_name
from autotune.objective import load_entry
from autotune.study import parse_study

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_current_name_maps_packages_and_submodules_only():
    assert current_name("jobs.ddbpn.train") == "autotune.jobs.ddbpn.train"
    assert current_name("jobs.demo") == "autotune.jobs.demo"
    assert current_name("autotune.mfbench") == "autotune.bench.learning_curves"
    assert current_name("autotune.benchfuncs") == "autotune.bench.landscapes"
    assert current_name("jobs.ddbpnx") is None and current_name("jobs") is None
    assert current_name("autotune.driver") is None


@pytest.mark.parametrize("old, new", [
    ("jobs.demo:objective", "autotune.jobs.demo:objective"),
    ("autotune.benchfuncs:objective", "autotune.bench.landscapes:objective"),
    ("autotune.mfbench:lc_branin", "autotune.bench.learning_curves:lc_branin"),
    ("autotune.mfbench:lc_mlp", "autotune.bench.learning_curves:lc_mlp"),
])
def test_old_entry_strings_load_the_moved_function(old, new):
    assert load_entry(old) is load_entry(new)


def test_old_ddbpn_entry_loads_the_moved_function():
    pytest.importorskip("torch")
    from autotune.jobs.ddbpn.train import finetune, pretrain
    assert load_entry("jobs.ddbpn.train:finetune") is finetune
    assert load_entry("jobs.ddbpn.train:pretrain") is pretrain


def test_a_study_written_with_an_old_entry_still_parses():
    study = parse_study({"objective": {"entry": "autotune.mfbench:lc_branin", "metric": "loss"},
                         "space": {"x1": {"low": -5.0, "high": 10.0}, "x2": {"low": 0.0, "high": 15.0}}})
    assert study.objective.entry == "autotune.mfbench:lc_branin"  # recorded as written


def test_a_missing_function_in_a_moved_module_is_still_a_study_error():
    with pytest.raises(StudyError, match="has no function 'nope'"):
        load_entry("jobs.demo:nope")


def test_a_users_own_jobs_package_neither_shadows_ours_nor_is_shadowed(tmp_path):
    """The bug that moved the package: a user's ``jobs/`` hid ``jobs.ddbpn``. Now old strings
    reach ours through the alias, and the user's own ``jobs.demo`` still wins over ours."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "demo.py").write_text("def objective(p, ctx):\n    return {'mine': 1}\n")
    code = textwrap.dedent("""
        from autotune.objective import load_entry
        mine = load_entry("jobs.demo:objective", ({tmp!r},))
        assert mine.__module__ == "jobs.demo", mine.__module__
        ours = load_entry("autotune.mfbench:lc_branin", ({tmp!r},))
        assert ours.__module__ == "autotune.bench.learning_curves"
        import importlib.util
        if importlib.util.find_spec("torch") is not None:
            ddbpn = load_entry("jobs.ddbpn.train:finetune", ({tmp!r},))
            assert ddbpn.__module__ == "autotune.jobs.ddbpn.train", ddbpn.__module__
        print("ok")
    """).format(tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_the_engine_imports_neither_benchmarks_nor_jobs():
    code = ("import sys, autotune, autotune.cli, autotune.driver, autotune.report, autotune.compare\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('autotune.bench', 'autotune.jobs', 'jobs')))\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_only_the_autotune_name_is_packaged():
    from setuptools import find_packages
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    include = [p.strip() for p in cfg["options.packages.find"]["include"].split(",")]
    tops = {p.split(".")[0] for p in find_packages(REPO, include=include)}
    assert tops == {"autotune"}
    assert "autotune.jobs.ddbpn" in find_packages(REPO, include=include)
    assert "autotune.bench" in find_packages(REPO, include=include)
