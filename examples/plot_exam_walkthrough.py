"""
=====================================================
Reading a mixed-model summary, one number at a time
=====================================================

A walkthrough for newcomers to mixed models. We fit one model to the Exam data
(4,059 students in 65 London schools) and explain every number its summary prints:
the REML criterion, the scaled residuals, the variance components and the
intraclass correlation, the correlation of random effects, the fixed effects and
their t values, the cross-level interaction, the schools' own effects (conditional
modes, "BLUPs") and what the model predicts for a school it has never seen.

The model: a student's exam score at 16 (``normexam``) depends on their reading
score at 11 (``standLRT``), on their school's average intake (``schavg``) and on the
interaction of the two; each school has its own intercept and its own slope on
``standLRT``::

    normexam ~ standLRT * schavg + (1 + standLRT | school)

Run it with ``pip install ".[plot]" && python examples/plot_exam_walkthrough.py``.
"""

# %%
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from sklmixed import lmer, plotting
from sklmixed.datasets import load_exam


def say(text):
    """Print a paragraph of explanation."""
    print()
    print(textwrap.fill(" ".join(text.split()), width=78))


exam = load_exam().frame
fit = lmer("normexam ~ standLRT * schavg + (1 + standLRT | school)", data=exam)
summary = fit.summary()
print(summary)

# %%
# The REML criterion
# ------------------
reml = summary.fit_statistics["REML criterion"].item()
say(f"""
REML criterion at convergence: {reml:.1f}. The model was fitted by restricted
maximum likelihood (REML), which estimates variances without the downward bias of
plain maximum likelihood. The criterion is -2 times the restricted
log-likelihood at the estimates: lower is better, but it is only comparable
between models with the same fixed effects. To compare models that differ in their
fixed effects, refit them with lmer(..., REML=False) and compare AIC or deviance.
""")

# %%
# Scaled residuals
# ----------------
q = summary.residuals.iloc[0]
say(f"""
Scaled residuals: each student's residual (observed minus fitted score, the fit
including their school's own effects) divided by the residual standard deviation.
If the model is right they look like draws from a standard normal distribution:
median near 0 (here {q['Median']:.3f}), quartiles near -0.67 and +0.67 (here
{q['1Q']:.3f} and {q['3Q']:.3f}), roughly symmetric, and with 4,059 students
extremes around 3.5 to 4 in size (here {q['Min']:.2f} and {q['Max']:.2f}).
Nothing here is alarming.
""")

# %%
# Variance components and the intraclass correlation
# --------------------------------------------------
re = summary.random_effects.set_index("Name")
var_int, sd_int = re.loc["(Intercept)", ["Variance", "Std.Dev."]]
var_slope, sd_slope = re.loc["standLRT", ["Variance", "Std.Dev."]]
var_res, sd_res = re.loc["", ["Variance", "Std.Dev."]]
icc = var_int / (var_int + var_res)
say(f"""
Random effects, school (Intercept): variance {var_int:.4f}, standard deviation
{sd_int:.3f}. Schools differ in their average score: for a student of average
intake (standLRT = 0), school means vary around the overall mean with a standard
deviation of {sd_int:.3f} exam-score units, beyond what schavg explains.
""")
say(f"""
Random effects, school standLRT: variance {var_slope:.4f}, standard deviation
{sd_slope:.3f}. Schools also differ in how strongly intake predicts the exam score:
the slope on standLRT varies between schools with a standard deviation of
{sd_slope:.3f} around its average.
""")
say(f"""
Residual: variance {var_res:.4f}, standard deviation {sd_res:.3f}: how much
students of the same school and the same intake still differ.
""")
say(f"""
The intraclass correlation (ICC) is the share of the unexplained variance that lies
between schools: {var_int:.4f} / ({var_int:.4f} + {var_res:.4f}) = {icc:.3f} for
students of average intake. It is also the correlation between two such students
of the same school, once the fixed effects are accounted for. With a random slope
the between-school variance depends on intake, so this ICC is the one at
standLRT = 0.
""")

# %%
# Correlation of the random effects
# ---------------------------------
corr = re.loc["standLRT", "Corr"]
cov = corr * sd_int * sd_slope
spread = {x: var_int + 2 * x * cov + x**2 * var_slope for x in (-1.0, 0.0, 1.0)}
say(f"""
Corr {corr:.2f}: across schools, the intercept and the slope are positively
correlated. Schools that do better for average students also reward intake more,
so schools differ more for strong students than for weak ones: the between-school
variance is {spread[-1.0]:.3f} at standLRT = -1, {spread[0.0]:.3f} at 0 and
{spread[1.0]:.3f} at +1 (variance + 2 x covariance x standLRT + slope variance x
standLRT^2).
""")
say(f"""
Number of obs: {summary.n_obs}, groups: school, {summary.groups['Levels']['school']}:
the variances above are estimated from 65 schools; that, more than the number of
students, limits how precisely they are known.
""")

# %%
# Fixed effects and t values
# --------------------------
fe = summary.fixed_effects
b, se, t = fe["Estimate"], fe["Std. Error"], fe["t value"]
say(f"""
Fixed effects are the population-average coefficients. (Intercept)
{b['(Intercept)']:.4f}: the expected score of a student of average intake
(standLRT = 0) in a school of average intake (schavg = 0); close to 0 because
normexam is normalized.
""")
say(f"""
standLRT {b['standLRT']:.4f}: in a school of average intake, one standard deviation
more at intake goes with {b['standLRT']:.3f} more on the exam score.
""")
say(f"""
schavg {b['schavg']:.4f}: for students of the same own intake, a school whose
average intake is one unit higher scores {b['schavg']:.3f} higher (a contextual,
school-level effect).
""")
clear = [name for name in fe.index if abs(t[name]) > 2]
say(f"""
Std. Error and t value: the t value is the estimate divided by its standard error
(for standLRT: {b['standLRT']:.4f} / {se['standLRT']:.4f} = {t['standLRT']:.2f}).
lme4 prints no p-values because the degrees of freedom of a mixed model are not
well defined; as a rough guide, |t| > 2 marks an effect distinguishable from zero
at about the 5% level. Here that holds for
{', '.join(f'{name} (t = {t[name]:.2f})' for name in clear)}.
""")

# %%
# The cross-level interaction
# ---------------------------
inter = b["standLRT:schavg"]
say(f"""
standLRT:schavg {inter:.4f} is a cross-level interaction: a student-level variable
(standLRT) times a school-level one (schavg). The slope on intake is not one number
but {b['standLRT']:.3f} + {inter:.3f} x schavg: in a school with schavg = -0.5 it is
{b['standLRT'] - 0.5 * inter:.3f}, with schavg = +0.5 it is
{b['standLRT'] + 0.5 * inter:.3f}. Intake matters more in schools with a strong
intake. Part of the school-to-school variation in slopes is thereby explained: the
slope variance is {var_slope:.4f} here, 0.0153 in the same model without the
interaction (model 4 of plot_exam_tutorial.py).
""")
say("""
Correlation of Fixed Effects: correlations between the estimates (not between the
variables) over hypothetical repeated samples. Values near +/-1 would mean two
coefficients cannot be told apart; all are small here. Names are abbreviated as
lme4 abbreviates them: (Intr) is (Intercept), stnLRT is standLRT.
""")

# %%
# Each school's own effects: conditional modes (BLUPs)
# ----------------------------------------------------
modes = fit.random_effects_["school"]
say(f"""
The summary gives the spread of school effects; model.random_effects_ gives each
school's own, the conditional modes (lme4's ranef, often called BLUPs): the
school's deviation from the fixed effects, shrunk towards zero the more so the
fewer students the school has. Their standard deviations
({modes['(Intercept)'].std():.3f} and {modes['standLRT'].std():.3f}) are below the
estimated {sd_int:.3f} and {sd_slope:.3f} because of that shrinkage. The three
schools with the highest intercepts:
""")
print(modes.sort_values("(Intercept)", ascending=False).head(3).round(3))

# %%
# The caterpillar plot shows all 65 schools at once: each school's mode with a 95%
# interval from its conditional variance (lme4's ``dotplot(ranef(fit, condVar =
# TRUE))``). Intervals that cross 0 are schools the data cannot tell from average.
fig, axes = plt.subplots(1, 2, figsize=(9, 6), sharey=False)
plotting.caterpillar(fit, column="(Intercept)", ax=axes[0])
plotting.caterpillar(fit, column="standLRT", ax=axes[1])
fig.tight_layout()
plt.show()
top = modes["(Intercept)"].idxmax()
schavg_top = exam.loc[exam["school"] == top, "schavg"].iloc[0]
slope_top = b["standLRT"] + inter * schavg_top + modes.loc[top, "standLRT"]
say(f"""
In school {top} (schavg = {schavg_top:.3f}) the slope on intake is
{b['standLRT']:.3f} + {inter:.3f} x {schavg_top:.3f} + {modes.loc[top, 'standLRT']:.3f}
= {slope_top:.3f}: fixed slope, plus the interaction, plus the school's own
deviation.
""")

# %%
# Prediction for a new school
# ---------------------------
# Three students of intake -1, 0 and +1 in a school not in the data (label 999),
# whose average intake is 0.2.
new = exam.head(3).assign(school=999, standLRT=[-1.0, 0.0, 1.0], schavg=0.2)
predicted = fit.predict(new)
population = (b["(Intercept)"] + b["standLRT"] * new["standLRT"] + b["schavg"] * 0.2
              + inter * new["standLRT"] * 0.2).to_numpy()
assert np.allclose(predicted, population)
say(f"""
For a school the model has never seen there is no conditional mode: its effects
are predicted to be zero, their mean. predict() then returns the population
prediction from the fixed effects alone: {np.round(predicted, 3).tolist()}, exactly
(Intercept) + standLRT x intake + schavg x 0.2 + standLRT:schavg x intake x 0.2.
For a school of the data, predict() adds that school's conditional modes: the
same three students in school {top} would be predicted
{np.round(fit.predict(new.assign(school=top, schavg=schavg_top)), 3).tolist()}.
""")
