# %% [markdown]
# # A finished study, from Python
#
# A notebook-style walk through one study directory with pandas: run it cell by cell in
# Jupyter or VS Code (the `# %%` markers), or as a script:
#
#     python docs/notebook.py runs/demo [OUT_DIR]
#
# It only reads the study (`autotune.load` takes no lock, writes nothing and never imports the
# objective), so it works on a login node while the study runs, or on a laptop with a copy of
# `history.jsonl`. Figures go to OUT_DIR (default: the current directory).
# Make a study to look at with `python -m autotune run search_spaces/demo.yaml`.

# %%
import os
import sys

import matplotlib

matplotlib.use("Agg")  # a script writes files; in a notebook, drop this line to see them inline
import matplotlib.pyplot as plt  # noqa: E402

import autotune as at  # noqa: E402

STUDY = sys.argv[1] if len(sys.argv) > 1 else "runs/demo"
OUT = sys.argv[2] if len(sys.argv) > 2 else "."
os.makedirs(OUT, exist_ok=True)  # a new OUT_DIR is made, not a traceback at the first figure

study = at.load(STUDY)
print(study)
print(study.summary())

# %% [markdown]
# ## The trials as a DataFrame
# One row per trial: parameters (typed as declared), epochs, each metric, `value` (the
# optimised metric), `best` (the best so far when the trial ended), times in seconds since the
# study started, `cost_s`, `status`, `attempts`, `job_id`, `error`.

# %%
df = study.trials_dataframe()
print(df.dtypes.to_string())
print(df["status"].value_counts().to_string())
ok = df[df["status"] == "ok"]
print(ok.sort_values("value", ascending=study.mode == "min").head(5).to_string(index=False))

# %% [markdown]
# ## Best so far against time and against compute

# %%
ended = ok.sort_values("end_s").assign(compute_s=lambda d: d["cost_s"].cumsum())
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
ended.plot(x="end_s", y="best", drawstyle="steps-post", ax=left, legend=False)
ended.plot(x="end_s", y="value", style=".", alpha=0.4, ax=left, legend=False)
ended.plot(x="compute_s", y="best", drawstyle="steps-post", ax=right, legend=False)
left.set_xlabel("time since start (s)")
right.set_xlabel("compute spent (s)")
left.set_ylabel(f"{study.metric} (best so far)")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "best_so_far.png"))

# %% [markdown]
# ## The metric along each parameter that varied

# %%
space = study.config.get("space", {})
varied = [p for p in space if p in df.columns and ok[p].nunique() > 1]
fig, axes = plt.subplots(1, max(1, len(varied)), figsize=(4 * max(1, len(varied)), 3.5),
                         squeeze=False)
for ax, name in zip(axes[0], varied):
    ok.plot.scatter(x=name, y="value", ax=ax, alpha=0.6)
    spec = space[name] if isinstance(space[name], dict) else {}
    if spec.get("log"):
        ax.set_xscale("log")
    ax.set_ylabel(study.metric)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "value_along_parameters.png"))

# %% [markdown]
# ## Grouped views: the mean and spread of the metric per value of a discrete parameter

# %%
discrete = [p for p in varied if isinstance(space[p], dict) and "values" in space[p]]
for name in discrete:
    print(ok.groupby(name)["value"].agg(["count", "mean", "std", "min"]).to_string())

# %% [markdown]
# Where the search reports a setting of its own (the axis search, whose answer under noise is
# the best mean over repeated runs rather than the luckiest single run):

# %%
print("best single trial:", study.best.trial if study.best else None)
print("the search's setting:", study.setting)
