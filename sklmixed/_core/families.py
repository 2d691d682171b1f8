"""Response distributions and link functions of the generalized linear mixed models.

A :class:`Family` pairs a distribution (its variance function, deviance residuals and
log-likelihood) with a :class:`Link` (``η = g(μ)``, its inverse and ``dμ/dη``). The
numbers follow R's ``binomial()`` and ``poisson()`` families as lme4's ``glmer`` uses
them, including the clamps that keep ``μ`` inside its range when ``η`` is extreme
(separated data), so that a fit stays finite where lme4's does.

Binomial responses are proportions ``y`` with the number of trials as prior weights
``w`` (R's convention); 0/1 responses have ``w = 1``. ``minus_twice_loglik`` is R's
``aic()`` of the family without the parameter count: ``−2 Σ log p(yᵢ | μᵢ)``.

New families (negative binomial, Gamma) add a :class:`Family` subclass and an entry in
``_FAMILIES``; the PIRLS and Laplace code only call the methods below.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["Family", "Link", "get_family", "FAMILY_LINKS"]

_EPS = np.finfo(float).eps
# R's logit link clamps η to ±30 (μ within e⁻³⁰ of 0 and 1); probit to ±qnorm(ε).
_LOGIT_THRESH = 30.0
_PROBIT_THRESH = float(-special.ndtri(_EPS))


class Link:
    """A link function ``η = g(μ)``.

    Attributes
    ----------
    name : str
        R's name (``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"``).
    """

    name = ""

    def link(self, mu):
        """``g(μ)``."""
        raise NotImplementedError

    def inverse(self, eta):
        """``μ = g⁻¹(η)``."""
        raise NotImplementedError

    def mu_eta(self, eta):
        """``dμ/dη`` at ``η``."""
        raise NotImplementedError

    def __repr__(self):
        return f"Link({self.name!r})"


class _Logit(Link):
    name = "logit"

    def link(self, mu):
        return special.logit(mu)

    def inverse(self, eta):
        return special.expit(np.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH))

    def mu_eta(self, eta):
        e = np.exp(-np.abs(eta))
        return np.maximum(e / (1.0 + e) ** 2, _EPS)


class _Probit(Link):
    name = "probit"

    def link(self, mu):
        return special.ndtri(mu)

    def inverse(self, eta):
        return special.ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))

    def mu_eta(self, eta):
        return np.maximum(np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi), _EPS)


class _Cloglog(Link):
    name = "cloglog"

    def link(self, mu):
        return np.log(-np.log1p(-mu))

    def inverse(self, eta):
        return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1.0 - _EPS)

    def mu_eta(self, eta):
        eta = np.minimum(eta, 700.0)
        return np.maximum(np.exp(eta - np.exp(eta)), _EPS)


class _Log(Link):
    name = "log"

    def link(self, mu):
        return np.log(mu)

    def inverse(self, eta):
        return np.maximum(np.exp(eta), _EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(eta), _EPS)


_LINKS = {cls.name: cls for cls in (_Logit, _Probit, _Cloglog, _Log)}


class Family:
    """A response distribution with its link.

    Parameters
    ----------
    link : Link

    Attributes
    ----------
    name : str
        R's name of the family (``"binomial"``, ``"poisson"``).
    link : Link
    """

    name = ""

    def __init__(self, link: Link):
        self.link = link

    def variance(self, mu):
        """The variance function ``V(μ)``."""
        raise NotImplementedError

    @property
    def canonical(self) -> bool:
        """Whether the link is the family's canonical one (Fisher scoring is Newton's
        method then)."""
        return self.link.name == FAMILY_LINKS[self.name][0]

    def kernel(self, y, mu, w):
        """The part of ``−2 log p(yᵢ | μᵢ)`` that depends on ``μ`` (per row): the
        deviance residual and the log-likelihood differ from it by constants of the
        data, so PIRLS and the optimizer evaluate only this."""
        raise NotImplementedError

    def constant(self, y, w):
        """``−2 log p(yᵢ | μᵢ) − kernel``: the normalizing constant (per row)."""
        raise NotImplementedError

    def deviance_residuals(self, y, mu, w):
        """Squared deviance residuals ``dᵢ`` (R's ``dev.resids``), prior weights included."""
        return self.kernel(y, mu, w) - self.kernel(y, y, w)

    def minus_twice_loglik(self, y, mu, w):
        """``−2 log p(yᵢ | μᵢ)`` per row (R's ``aic()`` before summing)."""
        return self.kernel(y, mu, w) + self.constant(y, w)

    def start_mu(self, y, w):
        """R's ``mustart``: where PIRLS starts before any coefficient is known."""
        raise NotImplementedError

    def working(self, y, eta, w, mu=None):
        """PIRLS's working weights and working residual at ``η`` (offset included;
        ``mu``, when given, is ``g⁻¹(η)`` already computed).

        Returns
        -------
        mu : ndarray
        weights : ndarray
            ``wᵢ (dμ/dη)² / V(μ)``.
        resid : ndarray
            ``(y − μ) / (dμ/dη)``, added to ``η`` for the working response.
        """
        if mu is None:
            mu = self.link.inverse(eta)
        d = self.link.mu_eta(eta)
        return mu, w * d * d / self.variance(mu), (y - mu) / d

    def __repr__(self):
        return f"Family({self.name!r}, link={self.link.name!r})"


class _Binomial(Family):
    name = "binomial"

    def variance(self, mu):
        return np.maximum(mu * (1.0 - mu), _EPS * _EPS)

    def kernel(self, y, mu, w):
        return -2.0 * w * (special.xlogy(y, mu) + special.xlog1py(1.0 - y, -mu))

    def constant(self, y, w):
        # R's binomial aic: the trials are the prior weights, successes rounded.
        m, k = np.round(w), np.round(w * y)
        return -2.0 * (
            special.gammaln(m + 1.0) - special.gammaln(k + 1.0) - special.gammaln(m - k + 1.0)
        )

    def start_mu(self, y, w):
        return (w * y + 0.5) / (w + 1.0)


class _Poisson(Family):
    name = "poisson"

    def variance(self, mu):
        return mu

    def kernel(self, y, mu, w):
        return 2.0 * w * (mu - special.xlogy(y, mu))

    def constant(self, y, w):
        return 2.0 * w * special.gammaln(y + 1.0)

    def start_mu(self, y, w):
        return y + 0.1


_FAMILIES = {"binomial": _Binomial, "poisson": _Poisson}
# Links each family takes, the first its canonical default (R's).
FAMILY_LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}


def get_family(family, link=None) -> Family:
    """The :class:`Family` for R's names, ``get_family("binomial", "probit")``.

    Parameters
    ----------
    family : str or Family
        ``"binomial"`` or ``"poisson"`` (a :class:`Family` is returned as it is).
    link : str, optional
        The link; None takes the family's canonical link (logit, log).

    Raises
    ------
    ValueError
        For a family or link sklmixed does not fit, naming the ones it does.
    """
    if isinstance(family, Family):
        if link is not None and link != family.link.name:
            raise ValueError(f"family already has link {family.link.name!r}; got link={link!r}.")
        return family
    if not isinstance(family, str) or family not in _FAMILIES:
        raise ValueError(
            f"family must be one of {sorted(_FAMILIES)} (R's names); got {family!r}. "
            "Gaussian responses are fitted by lmer / MixedLMRegressor."
        )
    allowed = FAMILY_LINKS[family]
    if link is None:
        link = allowed[0]
    if not isinstance(link, str) or link not in allowed:
        raise ValueError(
            f"link {link!r} is not available for family {family!r}; choose one of "
            f"{list(allowed)}."
        )
    return _FAMILIES[family](_LINKS[link]())
