"""
==========================================================
Shrinkage: each subject's own fit against the mixed model
==========================================================

Fitting a line to each subject of the sleep-deprivation study on their own ten days
gives 18 intercepts and slopes. The mixed model's conditional modes are those
estimates pulled towards the population (the origin of the plot): a little for a
subject whose own data are clear, more where they are noisy or extreme. The
shrinkage plot of MixedModels.jl draws each subject's own least-squares estimate
(open circle) joined to its conditional mode (dot):
:func:`sklmixed.plotting.shrinkage`.

Run it with ``pip install ".[plot]" && python examples/plot_shrinkage.py``.
"""

# %%
import matplotlib.pyplot as plt

from sklmixed import MixedLMRegressor, lmer, plotting
from sklmixed.datasets import load_exam, load_sleepstudy

sleep = load_sleepstudy().frame
fit = lmer("Reaction ~ Days + (Days | Subject)", data=sleep)

# %%
# Intercepts and slopes, in the plane
# -----------------------------------
# The axes are deviations from the fixed effects (intercept and slope on Days).
ax = plotting.shrinkage(fit, sleep)
ax.figure.tight_layout()
plt.show()

# %%
# A random intercept, on 65 schools
# ---------------------------------
# With one random effect the plot is the school's own mean residual against its
# mode. Schools with few students sit far below the dashed line of no shrinkage;
# large schools sit on it. The array interface works the same way.
exam = load_exam().frame
X, y = exam[["standLRT", "school"]], exam["normexam"]
schools = MixedLMRegressor(group="school").fit(X, y)
ax = plotting.shrinkage(schools, X, y)
ax.figure.tight_layout()
plt.show()
