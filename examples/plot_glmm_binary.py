"""
===========================================================
A binary outcome with groups: contraceptive use by district
===========================================================

A walkthrough of a generalized linear mixed model (lme4's ``glmer``) for a yes/no
outcome. The data: 1,934 women in 60 districts of Bangladesh (the 1989 fertility
survey, mlmRev's ``Contraception``). Did a woman use contraception (``use``, N or Y),
given her age (``age``, centred), whether she lives in a town (``urban``) and her
number of living children (``livch``)? Districts differ, and they differ more in
the countryside than in towns, so each district gets its own intercept and its own
urban effect::

    use ~ age + I(age^2) + urban + livch + (1 + urban | district)

We read each number of the fit (on the log-odds scale, then as probabilities), see
how far districts differ, and use the same model as a scikit-learn classifier under
grouped cross-validation.

Run it with ``pip install ".[plot]" && python examples/plot_glmm_binary.py``.
"""

# %%
import textwrap
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from sklmixed import MixedLogisticRegression
from sklmixed.datasets import load_contraception


def say(text):
    """Print a paragraph of explanation."""
    print()
    print(textwrap.fill(" ".join(text.split()), width=78))


data = load_contraception().frame
formula = "use ~ age + I(age^2) + urban + livch + (1 + urban | district)"
fit = MixedLogisticRegression(formula=formula).fit(data)  # glmer(formula, data, "binomial")
print(f"log-likelihood {fit.log_likelihood_:.2f}, AIC {fit.aic_:.1f}, BIC {fit.bic_:.1f}")
print(fit.variance_components_.round(3).to_string(index=False))
table = fit.fixed_effects_.to_frame("Estimate").assign(**{"Std. Error": fit.fixed_effects_se_})
print(table.assign(**{"z value": table["Estimate"] / table["Std. Error"]}).round(4))

# %%
# The fit warns that two districts have only non-users and one only users: their
# own effects are pulled to the edge the estimated variance allows (lme4 says
# nothing; the fit is still finite and matches lme4's to 1e-4).
#
# The response and the scale of the coefficients
# ----------------------------------------------
say(f"""
use has the levels "{fit.classes_[0]}" and "{fit.classes_[1]}" (classes_); as in R,
the first level is the failure, so the model is of P(use = "{fit.classes_[1]}"). Its
coefficients are on the log-odds scale: log(p / (1 - p)) = X beta + Z b, with the
logit link. A coefficient is a difference in log-odds; exp() of it is an odds
ratio.
""")

b, se = fit.fixed_effects_, fit.fixed_effects_se_
odds = np.exp(b)
say(f"""
urbanY {b['urbanY']:.3f} (standard error {se['urbanY']:.3f}): in the average
district, a town-dweller has {odds['urbanY']:.2f} times the odds of using
contraception of a woman of the same age and family in the countryside. livch1
{b['livch1']:.3f}: one living child rather than none multiplies the odds by
{odds['livch1']:.2f}; two or three and more children ({odds['livch2']:.2f} and
{odds['livch3+']:.2f}) about as much. The z value is the estimate over its
standard error, compared with the normal distribution for lme4's Pr(>|z|) (a GLMM
has no residual variance to estimate, so lme4 uses z rather than t).
""")

# %%
# How much districts differ
# -------------------------
vc = fit.variance_components_
sd_int = vc.loc[(vc["var1"] == "(Intercept)") & (vc["var2"].isna() | (vc["var2"] == "")), "sdcor"]
sd_urban = vc.loc[(vc["var1"] == "urbanY") & (vc["var2"].isna() | (vc["var2"] == "")), "sdcor"]
sd_int, sd_urban = float(sd_int.iloc[0]), float(sd_urban.iloc[0])
corr = float(vc.loc[vc["var2"] == "urbanY", "sdcor"].iloc[0])
say(f"""
There is no residual variance in the table: a binary outcome's variance is fixed by
its probability. The district intercepts have a standard deviation of
{sd_int:.3f} on the log-odds scale: the odds of use in a rural part of a district
one standard deviation above average are exp({sd_int:.3f}) = {np.exp(sd_int):.2f}
times the average. The urban effect varies between districts with a standard
deviation of {sd_urban:.3f}, and the two are correlated {corr:.2f}: where the
countryside uses contraception more, towns add less.
""")

# %%
# From log-odds to probabilities
# ------------------------------
# The fixed effects alone give the probability for a district of average effects
# (``random_effects="none"``); each district's own modes shift it. The figure shows
# the population curve by age for urban and rural women with two children, and the
# curves of the five districts with the most women.
ages = np.linspace(data["age"].min(), data["age"].max(), 60)
grid = data.iloc[np.zeros(ages.size, dtype=int)].assign(age=ages, livch="2")
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
largest = data["district"].value_counts().index[:5]
for ax, urban in zip(axes, ["N", "Y"]):
    rows = grid.assign(urban=urban)
    for district in largest:
        p = fit.predict_proba(rows.assign(district=district))[:, 1]
        ax.plot(ages, p, color="0.7", lw=1)
    population = fit.predict_proba(rows, random_effects="none")[:, 1]
    ax.plot(ages, population, color="C0", lw=2.5, label="average district")
    ax.set_title(f"urban = {urban}")
    ax.set_xlabel("age (centred, years)")
axes[0].set_ylabel("P(use = Y), two children")
axes[0].plot([], [], color="0.7", label="five largest districts")
axes[0].legend(loc="lower center")
fig.tight_layout()
plt.show()

sd_town = np.sqrt(sd_int**2 + sd_urban**2 + 2 * corr * sd_int * sd_urban)
p_average = expit(b["(Intercept)"] + b["livch2"])
say(f"""
A rural woman of average age with two children in an average district uses
contraception with probability {p_average:.2f}. The curve bends down at both ends
of the age range: the I(age^2) coefficient {b['I(age^2)']:.4f} is negative. The
district curves spread around the average curve more in the countryside than in
towns: a district's effect has standard deviation {sd_int:.2f} for rural women and
sqrt({sd_int:.2f}² + {sd_urban:.2f}² + 2 x {corr:.2f} x {sd_int:.2f} x {sd_urban:.2f}) =
{sd_town:.2f} for urban ones, on the log-odds scale.
""")

# %%
# Each district's own effects
# ---------------------------
modes = fit.random_effects_["district"]
say(f"""
random_effects_ holds each district's conditional modes (lme4's ranef): its
deviation from the fixed effects on the log-odds scale, shrunk towards zero the
fewer women it has. The three districts with the highest rural use:
""")
print(modes.sort_values("(Intercept)", ascending=False).head(3).round(3))

# %%
# The same model as a scikit-learn classifier
# -------------------------------------------
# ``MixedLogisticRegression`` is lme4's ``glmer(family = binomial)`` as a classifier: ``classes_``,
# ``predict`` (labels), ``predict_proba``, ``decision_function`` (log-odds). Grouped
# cross-validation (``GroupKFold``) holds out whole districts, so the held-out rows'
# districts are unseen and get the population-level probability: the score says
# how well the fixed part predicts for a new district. A logistic regression
# without district effects is the baseline.
X, y = data[["age", "urban", "livch", "district"]].assign(age2=data["age"] ** 2), data["use"]
mixed = MixedLogisticRegression(formula="use ~ age + age2 + urban + livch + (1 + urban | district)")
plain = make_pipeline(
    ColumnTransformer(
        [("cat", OneHotEncoder(drop="first"), ["urban", "livch"])], remainder="passthrough"
    ),
    LogisticRegression(max_iter=1000),
)
cv = GroupKFold(n_splits=3)
with warnings.catch_warnings():
    # Each training set has a district or two of only N (or only Y): said above.
    warnings.filterwarnings("ignore", message="Grouping factor .* levels have only")
    auc_mixed = cross_val_score(mixed, X, y, groups=X["district"], cv=cv, scoring="roc_auc")
auc_plain = cross_val_score(plain, X[["age", "age2", "urban", "livch"]], y,
                            groups=X["district"], cv=cv, scoring="roc_auc")
say(f"""
Area under the ROC curve on held-out districts: {auc_mixed.mean():.3f} for the mixed
model and {auc_plain.mean():.3f} for the logistic regression. For a new district the
two predict nearly alike: district effects help only where a district has been
seen. On the fitted districts, the probabilities with their effects (fit.fitted_)
reach an AUC of {roc_auc_score(y == "Y", fit.fitted_):.3f}.
""")
