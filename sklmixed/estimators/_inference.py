"""Intervals, profiles and the bootstrap as estimator methods (lme4's ``confint``,
``profile`` and ``bootMer`` on a fitted model); the work is in :mod:`sklmixed.inference`."""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

__all__ = ["InferenceMixin"]


class InferenceMixin:
    """``confint``, ``profile`` and ``bootstrap`` of a fitted mixed model."""

    def confint(self, parm=None, level=0.95, method="profile", **options):
        """Confidence intervals of every parameter (lme4's ``confint(fit, ...)``).

        Parameters
        ----------
        parm : str or list of str, optional
            lme4's names (``".sig01"``, ``".sigma"``, a fixed effect), ``"theta_"``
            or ``"beta_"``; all by default.
        level : float, default=0.95
        method : {"profile", "Wald", "boot"}, default="profile"
        **options
            ``n_boot``, ``random_state``, ``n_jobs``, ``boot_type`` for the bootstrap.

        Returns
        -------
        pandas.DataFrame
            lme4's rows (``.sig01``, ..., ``.sigma``, fixed effects) and columns
            (``"2.5 %"``, ``"97.5 %"``).
        """
        from ..inference.intervals import confint

        check_is_fitted(self, "result_")
        return confint(self.result_, parm=parm, level=level, method=method, **options)

    def profile(self, which=None):
        """The likelihood profile of each parameter (lme4's ``profile(fit)``).

        Parameters
        ----------
        which : list of str, optional
            Parameters to profile (lme4's names); all by default.

        Returns
        -------
        Profile
            ``zeta()`` is the tidy table of ζ against each parameter, ``confint()``
            the profile intervals; :func:`sklmixed.plotting.profile_zeta` draws it.
        """
        from ..inference import profile

        check_is_fitted(self, "result_")
        return profile(self.result_, which=which)

    def bootstrap(self, n_boot=1000, random_state=None, n_jobs=None):
        """Parametric bootstrap replicates (lme4's ``bootMer(fit, nsim = n_boot)``).

        Parameters
        ----------
        n_boot : int, default=1000
        random_state : int, numpy.random.Generator or None
        n_jobs : int, optional

        Returns
        -------
        BootstrapResult
            ``replicates`` (one row per replicate) and ``confint()``.
        """
        from ..inference import bootstrap

        check_is_fitted(self, "result_")
        return bootstrap(self.result_, n_boot=n_boot, random_state=random_state, n_jobs=n_jobs)
