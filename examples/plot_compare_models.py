"""
==============================================================
Mixed model, linear models and boosting on students in schools
==============================================================

The Exam data: 4,059 students in 65 London schools; the target is a normalized exam
score, the features the student's intake reading score (``standLRT``), the school's
average intake score (``schavg``) and sex. Students of the same school resemble each
other, which is what a random intercept (and slope) per school models.

Four regressors, two questions:

- **KFold** (shuffled): the test students come from schools seen in training. Can a
  model use what it learned about each school?
- **GroupKFold** by school: every test school is new. Does a model fall back to a
  sensible prediction for a school it has never seen?

Three folds of each, so that the whole comparison runs in a few seconds::

    pip install ".[plot]" && python examples/plot_compare_models.py
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from sklmixed import MixedLMRegressor
from sklmixed.datasets import load_exam

exam = load_exam().frame
X = exam[["standLRT", "schavg", "sex", "school"]]
y = exam["normexam"]
schools = exam["school"]

NUMERIC, CATEGORICAL = ["standLRT", "schavg"], ["sex"]


def features(school="drop"):
    """Scale the numeric columns, one-hot ``sex``; ``school`` as each model needs it."""
    return ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(drop="if_binary", sparse_output=False), CATEGORICAL),
            *([] if school in ("drop", "passthrough") else [("school", school, ["school"])]),
        ],
        remainder="passthrough" if school == "passthrough" else "drop",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


models = {
    # The school column passes through by name; the model estimates how much schools
    # differ (a variance) and how much each school's own data can be trusted.
    "mixed model": make_pipeline(
        features("passthrough"),
        MixedLMRegressor(group="school", random_effects=["standLRT"]),
    ),
    # No school information at all.
    "linear regression": make_pipeline(features(), LinearRegression()),
    # A fixed effect per school, shrunk by a penalty chosen by hand rather than
    # estimated; unknown schools get all-zero indicator columns.
    "ridge, one-hot schools": make_pipeline(
        features(OneHotEncoder(handle_unknown="ignore", sparse_output=False)), Ridge(alpha=10.0)
    ),
    # Trees on the same features, school as a categorical feature (unknown schools are
    # sent down the branch of missing values).
    "gradient boosting": make_pipeline(
        features(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)),
        HistGradientBoostingRegressor(
            max_iter=50, categorical_features=["school"], random_state=0
        ),
    ),
}

splitters = {
    "KFold (known schools)": (KFold(3, shuffle=True, random_state=0), None),
    "GroupKFold (new schools)": (GroupKFold(3), schools),
}

rows = []
# 4,059 rows are too few for gradient boosting's thread pool to pay off: one thread
# is faster, above all on a busy machine.
with threadpool_limits(limits=1, user_api="openmp"):
    for model_name, model in models.items():
        for split_name, (cv, groups) in splitters.items():
            # With the school a column of X, groups= is for the splitter only.
            scores = cross_val_score(model, X, y, cv=cv, groups=groups)
            rows.append({"model": model_name, "cross-validation": split_name,
                         "R2 mean": scores.mean(), "R2 std": scores.std()})
table = pd.DataFrame(rows)
wide = table.pivot(index="model", columns="cross-validation", values="R2 mean").loc[list(models)]
print(wide.round(3).to_string())

# %%
# Reading the table
# -----------------
#
# *Known schools (KFold).* The mixed model adds each school's conditional mode
# (BLUP) to the population prediction: a school's own mean, shrunk toward the
# population by an amount that depends on how many of its students were seen and on
# the estimated between-school variance. It clearly beats linear regression, which
# ignores schools. Ridge on one-hot schools does something similar with a single
# hand-picked penalty and no school-specific slope; gradient boosting can use the
# school as a category but must learn the school effects from splits.
#
# *New schools (GroupKFold).* Nothing is known about a test school, so the mixed
# model predicts at the population level, ``X @ fixed_effects_`` exactly, with no
# error and no warning. It then scores like linear regression (its fixed effects are
# estimated accounting for the clustering, which may move them slightly): random
# effects help when groups recur, and cost nothing when they do not.

fig, ax = plt.subplots(figsize=(8, 4.5))
positions = np.arange(len(models))
width = 0.38
for i, split_name in enumerate(splitters):
    part = table[table["cross-validation"] == split_name].set_index("model").loc[list(models)]
    ax.bar(positions + (i - 0.5) * width, part["R2 mean"], width, yerr=part["R2 std"],
           capsize=3, label=split_name)
ax.set_xticks(positions, list(models))
ax.set_ylabel("cross-validated R²")
ax.set_title("Exam scores of students in schools")
ax.set_ylim(0, 1.25 * table["R2 mean"].max())
ax.legend(loc="upper center", ncols=2)
fig.tight_layout()
plt.show()
