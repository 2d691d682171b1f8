"""
=====================================================
Caterpillar plot: each subject's effects, with doubt
=====================================================

The sleep-deprivation study (lme4's ``sleepstudy``): the reaction time of 18
subjects, measured on each of ten days of restricted sleep. Each subject gets a
random intercept (their reaction time on day 0) and a random slope on ``Days``
(how much slower each extra day makes them)::

    Reaction ~ Days + (Days | Subject)

A caterpillar plot shows every subject's conditional mode, the subject's estimated
deviation from the population, with an interval from its conditional variance: lme4's
``dotplot(ranef(fit, condVar = TRUE))``, here :func:`sklmixed.plotting.caterpillar`.
Run it with ``pip install ".[plot]" && python examples/plot_caterpillar.py``.
"""

# %%
import matplotlib.pyplot as plt

from sklmixed import lmer, plotting
from sklmixed.datasets import load_sleepstudy

sleep = load_sleepstudy().frame
fit = lmer("Reaction ~ Days + (Days | Subject)", data=sleep)
print(fit.variance_components_.round(3))

# %%
# One panel per random effect
# ---------------------------
# Subjects are sorted by their mode. The intervals are the modes ± 1.96 conditional
# standard deviations (``random_effects_cond_var_``, lme4's ``condVar``): where an
# interval crosses 0 the subject cannot be told from the average subject.
fig, axes = plt.subplots(1, 2, figsize=(9, 5))
plotting.caterpillar(fit, column="(Intercept)", ax=axes[0])
plotting.caterpillar(fit, column="Days", ax=axes[1])
fig.tight_layout()
plt.show()

# %%
# The numbers behind the plot
# ---------------------------
# The modes are ``random_effects_`` (lme4's ``ranef``); the intervals come from the
# diagonal of each subject's 2 × 2 conditional covariance.
import numpy as np  # noqa: E402

modes = fit.random_effects_["Subject"]
sd = np.sqrt(np.diagonal(fit.random_effects_cond_var_["Subject"], axis1=1, axis2=2))
table = modes.assign(sd_intercept=sd[:, 0], sd_days=sd[:, 1])
print(table.sort_values("Days").round(2))
