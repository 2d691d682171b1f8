"""
==================================================
The lme4 tutorial on the Exam data, model by model
==================================================

The classic introduction to multilevel models with lme4 follows 4,059 London
students in 65 schools (Goldstein et al., 1993; mlmRev's ``Exam`` data). The
response ``normexam`` is a normalized exam score at 16, ``standLRT`` a standardized
reading test score at 11 and ``schavg`` the school's average intake score.

The tutorial fits five models of growing richness. Each is fitted here with
:func:`sklmixed.lmer`, the same call as in R, and printed with ``summary()``, whose
text follows lme4's ``print(summary(fit))`` number for number; the last section
draws each school's fitted line. The data ship with sklmixed, so this script runs
anywhere in a few seconds::

    pip install ".[plot]" && python examples/plot_exam_tutorial.py
"""

# %%
# The data
# --------
# One row per student. School labels are integers; ``lmer`` treats the grouping
# variable of a random-effects term as categorical whatever its type.
import matplotlib.pyplot as plt
import numpy as np

from sklmixed import lmer
from sklmixed.datasets import load_exam

exam = load_exam().frame
print(exam[["school", "student", "normexam", "standLRT", "schavg"]].head())


def show(title, fit):
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")
    print(fit.summary())


# %%
# 1. The null model: how much do schools differ?
# ----------------------------------------------
# A random intercept per school and nothing else. The school variance over the
# total variance is the intraclass correlation: the share of the variation in exam
# scores that lies between schools.
null = lmer("normexam ~ 1 + (1 | school)", data=exam)
show("1. Null model: normexam ~ 1 + (1 | school)", null)

# %%
# 2. A random intercept and a student-level predictor
# ---------------------------------------------------
# Intake score explains much of the exam score; the school variance shrinks because
# schools differ in the intake of their students.
intercept = lmer("normexam ~ standLRT + (1 | school)", data=exam)
show("2. Random intercept: normexam ~ standLRT + (1 | school)", intercept)

# %%
# 3. A random slope, fitted by maximum likelihood
# -----------------------------------------------
# The effect of intake may differ between schools: each school gets its own
# intercept and slope, correlated. ``REML=False`` fits by maximum likelihood, as the
# tutorial does to compare this model with the previous one by AIC and deviance.
slope = lmer("normexam ~ standLRT + (standLRT | school)", data=exam, REML=False)
show("3. Random slope (ML): normexam ~ standLRT + (standLRT | school)", slope)

# %%
# 4. A school-level predictor
# ---------------------------
# Schools whose intake is stronger on average do better, beyond what their
# students' own intake predicts: ``schavg`` explains part of the school intercepts.
school = lmer("normexam ~ standLRT + schavg + (1 + standLRT | school)", data=exam)
show("4. School-level predictor: normexam ~ standLRT + schavg + (1 + standLRT | school)",
     school)

# %%
# 5. A cross-level interaction
# ----------------------------
# Does the school's average intake change the effect of a student's own intake?
# ``standLRT * schavg`` adds the interaction of a student-level and a school-level
# variable; it explains part of the school slopes. See ``plot_exam_walkthrough.py``
# for every number of this summary explained.
cross = lmer("normexam ~ standLRT * schavg + (1 + standLRT | school)", data=exam)
show("5. Cross-level interaction: normexam ~ standLRT * schavg + (1 + standLRT | school)",
     cross)

# %%
# The tables behind the text
# --------------------------
# Every table of a summary is also a DataFrame, with unrounded numbers.
summary = cross.summary()
print("\nRandom effects as a DataFrame:")
print(summary.random_effects)
print("\nFixed effects as a DataFrame:")
print(summary.fixed_effects)

# %%
# Each school's line
# ------------------
# The random-slope model (3.) gives every school its own intercept and slope: the
# fixed effects plus the school's conditional modes. Most lines run parallel to the
# population line (black); the spread of the intercepts is the school variance, the
# fan of the slopes the slope variance.
beta = slope.fixed_effects_
modes = slope.random_effects_["school"]
grid = np.linspace(exam["standLRT"].min(), exam["standLRT"].max(), 2)
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for school, (b0, b1) in modes.iterrows():
    ax.plot(grid, beta["(Intercept)"] + b0 + (beta["standLRT"] + b1) * grid,
            color="C0", lw=0.6, alpha=0.5)
ax.plot(grid, beta["(Intercept)"] + beta["standLRT"] * grid, color="black", lw=2,
        label="population (fixed effects)")
ax.set_xlabel("standLRT (reading score at 11)")
ax.set_ylabel("predicted normexam (exam score at 16)")
ax.set_title("Model 3: one line per school")
ax.legend(loc="upper left")
fig.tight_layout()
plt.show()
