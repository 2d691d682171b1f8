"""
=======================================================
Checking a fit: residuals and the normality of effects
=======================================================

Two pictures every mixed-model analysis looks at before it believes its numbers:

- residuals against fitted values (lme4's ``plot(fit)``): no trend, no funnel;
- a normal QQ plot of the conditional modes (lme4's ``qqmath(ranef(fit))``): the
  model assumes the random effects are normal, so the modes should lie near a line.

Here the random-intercept model of the Exam data (4,059 students in 65 schools).
Run it with ``pip install ".[plot]" && python examples/plot_model_checks.py``.
"""

# %%
import matplotlib.pyplot as plt

from sklmixed import lmer, plotting
from sklmixed.datasets import load_exam

exam = load_exam().frame
fit = lmer("normexam ~ standLRT + (1 | school)", data=exam)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
plotting.residuals_vs_fitted(fit, ax=axes[0])
plotting.qq_modes(fit, ax=axes[1])
fig.tight_layout()
plt.show()

# %%
# Reading them
# ------------
# The residuals form an even band around 0: the linear trend in ``standLRT`` and a
# shift per school leave no visible structure. (The diagonal stripes are the
# discreteness of the reading score.) The school modes follow the normal line, with
# no school far off it; the few at the ends are shrunk, small schools.
print(fit.summary().residuals.round(3))
