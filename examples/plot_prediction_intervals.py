"""
=====================================================================
Prediction intervals for seen and new schools, and a school arriving
=====================================================================

The Exam data: 4,059 students in 65 London schools, a normalized exam score to
predict from the student's intake reading score ``standLRT``. A mixed model with a
random intercept and slope per school is fitted on 62 schools; three schools are held
out as if they opened after the fit.

Three questions a practitioner asks of a prediction:

- **How sure is it?** ``predict(X, return_std=True)`` gives the standard error of the
  conditional mean, from the joint uncertainty of the fixed effects and the school's
  effects; ``predict_interval(X, kind="observation")`` an interval for one new
  student's score.
- **What about a school the model has never seen?** Its prediction is the population
  one, with the uncertainty of an unknown school's effect added: wider intervals.
- **And once its first students' scores come in?** ``add_groups(X, y)`` conditions
  the new school's effect on them at the fitted variance components, without a refit.

Run it with ``python examples/plot_prediction_intervals.py``; it saves two figures to
the temporary directory (the paths are printed).
"""

import pathlib
import tempfile

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt
import numpy as np

from sklmixed import MixedLMRegressor
from sklmixed.datasets import load_exam

exam = load_exam().frame
features = ["standLRT", "school"]
held_out = [17, 43, 53]  # schools "opened after the fit"
train = exam[~exam["school"].isin(held_out)]
model = MixedLMRegressor(group="school", random_effects=["standLRT"])
model.fit(train[features], train["normexam"])
print(f"fitted on {len(train)} students of {model.n_groups_['school']} schools")

# %%
# Intervals for a seen school and for a new one
# ---------------------------------------------
#
# Over a grid of intake scores, the interval of the conditional mean (the school's
# expected score at that intake) and of a new student's score. The seen school's mean
# is known to within the uncertainty of its own effect (its students inform it); the
# new school's is only known to within the spread of schools, so even its *mean* has a
# wide interval. A new student adds the residual variance σ² in both cases.

grid = np.linspace(-3, 3, 61)
counts = exam["school"].value_counts()
schools = {f"school 1 (seen, {counts[1]} students)": 1, "school 17 (new to the model)": 17}
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (title, school) in zip(axes, schools.items()):
    rows = exam.iloc[: len(grid)][features].assign(standLRT=grid, school=school)
    mean = model.predict(rows)
    for kind, alpha in (("observation", 0.15), ("mean", 0.35)):
        lower, upper = model.predict_interval(rows, kind=kind, level=0.95).T
        ax.fill_between(grid, lower, upper, alpha=alpha, color="C0", label=f"95% {kind}")
    ax.plot(grid, mean, color="C0", label="prediction")
    students = exam[exam["school"] == school]
    ax.scatter(
        students["standLRT"],
        students["normexam"],
        s=6,
        color="k",
        alpha=0.5,
        label="its students" + (" (not used in fit)" if school in held_out else ""),
    )
    ax.set_title(title)
    ax.set_xlabel("intake score (standLRT)")
axes[0].set_ylabel("exam score (normexam)")
axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()
out = pathlib.Path(tempfile.gettempdir()) / "sklmixed_prediction_intervals.png"
fig.savefig(out, dpi=100)
print(f"intervals saved to {out}")

# The standard errors behind the bands, at an intake score of 0:
at_zero = exam.iloc[:2][features].assign(standLRT=0.0, school=[1, 17])
_, std = model.predict(at_zero, return_std=True)
print(
    f"standard error of the mean at standLRT = 0: seen school {std[0]:.3f}, new school {std[1]:.3f}"
)

# %%
# A new school's effect as its students arrive
# --------------------------------------------
#
# School 17's students arrive one at a time. After each, ``add_groups`` gives the
# school's conditional mode (its intercept: how much better than the population its
# students do at an average intake) and its conditional variance, at the fitted
# variance components; the original model is left unchanged. With no student the
# effect is the prior, mean 0 and the between-school standard deviation; it then
# moves toward what the school's data say and its interval narrows. The dashed line
# is the effect a fit on all 65 schools gives it.

school = 17
arrivals = exam[exam["school"] == school].sample(frac=1.0, random_state=0)
tau = np.sqrt(model.variance_components_.query("group == 'school' and var2.isna()")["vcov"].iloc[0])
estimates, half_widths = [0.0], [1.96 * tau]
for k in range(1, len(arrivals) + 1):
    known = model.add_groups(arrivals[features].iloc[:k], arrivals["normexam"].iloc[:k])
    estimates.append(known.random_effects_["school"].loc[school, "(Intercept)"])
    half_widths.append(1.96 * np.sqrt(known.random_effects_cond_var_["school"][-1][0, 0]))
estimates, half_widths = np.array(estimates), np.array(half_widths)

full = MixedLMRegressor(group="school", random_effects=["standLRT"])
full.fit(exam[features], exam["normexam"])
fig, ax = plt.subplots(figsize=(7, 4))
students = np.arange(len(estimates))
ax.fill_between(
    students,
    estimates - half_widths,
    estimates + half_widths,
    alpha=0.3,
    label="95% interval (conditional variance)",
)
ax.plot(students, estimates, marker="o", markersize=3, label="conditional mode")
ax.axhline(
    full.random_effects_["school"].loc[school, "(Intercept)"],
    ls="--",
    color="k",
    label="fit on all schools",
)
ax.axhline(0.0, color="grey", lw=0.8)
ax.set_xlabel("students of school 17 seen so far")
ax.set_ylabel("school 17's intercept")
ax.set_title("A new school's effect as its students arrive (no refit)")
ax.legend(fontsize=8)
fig.tight_layout()
out = pathlib.Path(tempfile.gettempdir()) / "sklmixed_school_arrives.png"
fig.savefig(out, dpi=100)
print(f"arrivals saved to {out}")
print(
    f"after 5 students: {estimates[5]:+.3f} ± {half_widths[5]:.3f}; after all "
    f"{len(arrivals)}: {estimates[-1]:+.3f} ± {half_widths[-1]:.3f} (prior ± {half_widths[0]:.3f})"
)
