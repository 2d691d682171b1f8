"""
=========================================================
Profile intervals: where the likelihood is not a parabola
=========================================================

Wald intervals (estimate ± 1.96 standard errors) assume the log-likelihood is a
parabola around the estimate. For fixed effects it nearly is; for standard
deviations of random effects, bounded by zero, and for correlations, bounded by ±1,
it is not. lme4's answer is the likelihood profile: hold one parameter at a value,
refit the others by maximum likelihood, and record

    ζ = sign(value − estimate) · sqrt(deviance(value) − deviance at the optimum).

Where the likelihood is a parabola, ζ is a straight line in the parameter; the
profile interval is where ζ crosses ±1.96. ``fit.profile()`` computes it (lme4's
``profile(fit)``), ``fit.confint()`` reads the intervals (lme4's ``confint(fit)``) and
:func:`sklmixed.plotting.profile_zeta` draws ζ (lme4's ``xyplot(profile(fit))``).
"""

# %%
import matplotlib.pyplot as plt

from sklmixed import lmer, plotting
from sklmixed.datasets import load_sleepstudy

sleep = load_sleepstudy().frame
fit = lmer("Reaction ~ Days + (Days | Subject)", data=sleep)

# %%
# The profile and its intervals
# -----------------------------
# The parameters have lme4's names: ``.sig01`` the standard deviation of the
# intercepts, ``.sig02`` their correlation with the slopes, ``.sig03`` the standard
# deviation of the slopes, ``.sigma`` the residual one, then the fixed effects.
# The profile refits only what the stored cross-products need: no pass over the rows.
prof = fit.profile()
print(prof.confint().round(3))

# %%
# ζ against each parameter
# ------------------------
# The fixed effects' and σ's profiles are nearly straight: their Wald intervals are
# fine. The correlation's and the standard deviations' bend: their intervals are
# asymmetric around the estimate, which a Wald interval cannot be.
plotting.profile_zeta(prof)
plt.gcf().tight_layout()
plt.show()

# %%
# Against Wald and the bootstrap
# ------------------------------
# lme4 gives no Wald interval for the variance parameters; a parametric bootstrap
# (lme4's ``bootMer``) does, from replicates drawn from the stored statistics.
wald = fit.confint(method="Wald")
boot = fit.confint(method="boot", n_boot=2000, random_state=0)
print(wald.loc[["(Intercept)", "Days"]].round(3))
print(boot.round(3))
