"""Column roles for the array and DataFrame interface: which columns of X are fixed
features, random slopes and group labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._names import INTERCEPT, r_name
from .arrays import RawTerm
from .base import Design, bar_text
from .checks import check_exposure
from .frames import (
    column_label,
    groups_columns,
    groups_names,
    label_column,
    numeric_column,
    resolve_column,
    unique_keys,
)

__all__ = ["ColumnDesign"]


class ColumnDesign(Design):
    """Column roles, fitted on the training X.

    Parameters
    ----------
    group, random_effects, fixed_effects, random_intercept, fit_intercept, covariance
        As for :class:`~sklmixed.MixedLMRegressor`.
    weights : str or int, default=None
        The column of X holding lme4's prior weights (row ``i`` has residual variance
        ``σ²/wᵢ``); it is not a fixed feature.
    offset, exposure : str or int, default=None
        Columns of X holding a known part of the linear predictor (lme4's ``offset``,
        on the link scale) or an exposure whose log is that part (``offset =
        log(exposure)``, a Poisson model's rate per unit of exposure). Neither is a
        fixed feature; both may be given (their offsets add up). New data for
        ``transform`` must hold them too.
    nested : bool, default=False
        Whether the group columns are nested, outermost first: ``["community",
        "household"]`` then means lme4's ``(1 | community/household)``, factors
        ``community`` and ``household:community`` (labels ``"h1:c1"``), so that
        household ids reused across communities are different households.
    unseen_levels : {"population", "warn", "error"}, default="population"
        What :meth:`transform` does with group levels never seen in fit.
    na_action : {"raise", "omit"}, default="raise"
        Whether rows missing a value in a column the model uses (features, group
        labels, weights, the response) are refused or left out.
    """

    def __init__(
        self,
        *,
        group=None,
        random_effects=None,
        fixed_effects=None,
        random_intercept=True,
        fit_intercept=True,
        covariance="unstructured",
        weights=None,
        nested=False,
        unseen_levels="population",
        na_action="raise",
        offset=None,
        exposure=None,
    ):
        self.group = group
        self.random_effects = random_effects
        self.fixed_effects = fixed_effects
        self.random_intercept = random_intercept
        self.fit_intercept = fit_intercept
        self.covariance = covariance
        self.weights = weights
        self.nested = nested
        self.unseen_levels = unseen_levels
        self.na_action = na_action
        self.offset = offset
        self.exposure = exposure

    # -- roles, resolved on the training X --------------------------------------------
    def _learn_roles(self, X, groups):
        group_keys = (
            []
            if self.group is None
            else (list(self.group) if isinstance(self.group, (list, tuple)) else [self.group])
        )
        if group_keys and groups is not None:
            raise ValueError(
                "Group labels were given twice: as the `group` column(s) of X and as "
                "`groups=`. Use one of them."
            )
        self.group_keys_ = unique_keys(
            [resolve_column(X, key, "group") for key in group_keys], "group"
        )
        if groups is not None:
            self.group_names_ = groups_names(groups)
        else:
            self.group_names_ = [column_label(X, key) for key in self.group_keys_]
        if self.nested and len(self.group_names_) < 2:
            raise ValueError("nested=True needs at least two group columns, outermost first.")
        all_keys = list(X.columns) if isinstance(X, pd.DataFrame) else list(range(X.shape[1]))
        roles = list(self.group_keys_) + self._offset_keys(X)
        if self.weights is not None:
            roles.append(resolve_column(X, self.weights, "weights"))
        if self.fixed_effects is None:
            self.fixed_keys_ = [k for k in all_keys if k not in roles]
        else:
            self.fixed_keys_ = unique_keys(
                [resolve_column(X, key, "fixed_effects") for key in self.fixed_effects],
                "fixed_effects",
            )
            clash = [k for k in self.fixed_keys_ if k in self.group_keys_]
            if clash:
                raise ValueError(f"fixed_effects: {clash} are group columns.")
        self.all_fixed_names_ = ((INTERCEPT,) if self.fit_intercept else ()) + tuple(
            column_label(X, k) for k in self.fixed_keys_
        )
        self.random_keys_ = self._random_keys(X)
        self.random_names_ = [tuple(column_label(X, k) for k in keys) for keys in self.random_keys_]
        for name, keys in zip(self.group_names_, self.random_keys_):
            if not keys and not self.random_intercept:
                raise ValueError(
                    f"Grouping factor {name!r} has no random effects: random_intercept=False "
                    "and no random_effects columns for it."
                )

    def _random_keys(self, X):
        spec = self.random_effects
        if spec is None:
            return [[] for _ in self.group_names_]
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in self.group_names_ and k not in self.group_keys_]
            if unknown:
                raise ValueError(
                    f"random_effects: {unknown} are not grouping factors (factors: "
                    f"{self.group_names_})."
                )
            per_factor = []
            for name, key in zip(self.group_names_, self.group_keys_ or self.group_names_):
                cols = spec.get(name, spec.get(key, []))
                keys = unique_keys(
                    [resolve_column(X, c, "random_effects") for c in cols], "random_effects"
                )
                if any(k in self.group_keys_ for k in keys):
                    raise ValueError(f"random_effects: {cols} for {name!r} include a group column.")
                per_factor.append(keys)
            return per_factor
        keys = unique_keys([resolve_column(X, c, "random_effects") for c in spec], "random_effects")
        clash = [k for k in keys if k in self.group_keys_]
        if clash:
            raise ValueError(f"random_effects: {clash} are group columns.")
        return [keys for _ in self.group_names_]

    def _used_columns(self, X, groups):
        self._learn_roles(X, groups)
        keys = list(self.fixed_keys_) + list(self.group_keys_)
        keys += [k for factor_keys in self.random_keys_ for k in factor_keys]
        if self.weights is not None:
            keys.append(resolve_column(X, self.weights, "weights"))
        keys += self._offset_keys(X)
        columns = [X[k] if isinstance(X, pd.DataFrame) else X[:, k] for k in dict.fromkeys(keys)]
        return columns + ([] if groups is None else groups_columns(groups))

    def _offset_keys(self, X):
        return [
            resolve_column(X, key, argument)
            for argument, key in (("offset", self.offset), ("exposure", self.exposure))
            if key is not None
        ]

    def _offset(self, X):
        # The offset column itself is added by Design (every design has one).
        if self.exposure is None:
            return None
        key = resolve_column(X, self.exposure, "exposure")
        return check_exposure(numeric_column(X, key), column_label(X, key))

    # -- reading ------------------------------------------------------------------------
    def _read(self, X, groups, fitting):
        if fitting:
            self._learn_roles(X, groups)
        n = X.shape[0]
        # A column both fixed and random (the usual random slope) is read and checked once.
        numeric = {}

        def column(key):
            if key not in numeric:
                numeric[key] = numeric_column(X, key)
            return numeric[key]

        # Filled column by column in Fortran order: one pass, no list of temporaries.
        X_full = np.empty((n, len(self.all_fixed_names_)), order="F")
        if self.fit_intercept:
            X_full[:, 0] = 1.0
        for j, key in enumerate(self.fixed_keys_, start=int(self.fit_intercept)):
            X_full[:, j] = column(key)
        terms = []
        for name, labels, keys, slopes in zip(
            self._factor_names(), self._labels(X, groups, n), self.random_keys_, self.random_names_
        ):
            cols = ([np.ones(n)] if self.random_intercept else []) + [column(k) for k in keys]
            names = ((INTERCEPT,) if self.random_intercept else ()) + slopes
            Z = np.column_stack(cols)
            if self.covariance == "unstructured":
                terms.append(RawTerm(name, labels, Z, names))
            else:  # lme4's ||: one term per column
                terms.extend(
                    RawTerm(name, labels, Z[:, j : j + 1], (names[j],), correlated=False)
                    for j in range(len(names))
                )
        return X_full, self.all_fixed_names_, terms

    def _factor_names(self):
        if not self.nested:
            return self.group_names_
        # lme4's names for a/b/c: a, b:a, c:b:a (innermost written first).
        return [
            ":".join(reversed(self.group_names_[: k + 1])) for k in range(len(self.group_names_))
        ]

    def _labels(self, X, groups, n):
        if self.group_keys_:
            if groups is not None:
                raise ValueError(
                    "Group labels were given twice: as a `group` column of X and as `groups=`."
                )
            columns = [label_column(X, k) for k in self.group_keys_]
        elif groups is None:
            if self.group_names_:
                raise ValueError(
                    "This model was fitted with groups=...; pass the group labels to "
                    "predict/score as groups= too. (scikit-learn's named scorers, such as "
                    "scoring=\"r2\", call predict(X) without them: use scoring=None, "
                    "which calls score(X, y, groups=...), or sklmixed.grouped_scorer(\"r2\"), "
                    "or keep the groups in a column of X.)"
                )
            return []
        else:
            columns = groups_columns(groups)
            if len(columns) != len(self.group_names_):
                raise ValueError(
                    f"groups has {len(columns)} column(s); the model was fitted with "
                    f"{len(self.group_names_)} grouping factor(s)."
                )
            for col in columns:
                if col.shape[0] != n:
                    raise ValueError(f"groups has {col.shape[0]} rows but X has {n}.")
        if not self.nested:
            return columns
        return [_joined(columns[: k + 1]) for k in range(len(columns))]

    def formula_text(self, response="y"):
        """The equivalent lme4 formula, e.g. ``y ~ standLRT + (1 + standLRT | school)``."""
        fixed = [r_name(n) for n in self.fixed_names_ + self.dropped_fixed_ if n != INTERCEPT]
        fixed = (fixed or ["1"]) if self.fit_intercept else ["0"] + fixed
        bars = []
        for name, slopes in zip(self._factor_names(), self.random_names_):
            columns = ((INTERCEPT,) if self.random_intercept else ()) + slopes
            if self.covariance == "unstructured":
                bars.append(bar_text(columns, name))
            else:
                bars.extend(bar_text((c,), name) for c in columns)
        return f"{response} ~ " + " + ".join(fixed + bars)


def _joined(columns):
    """Labels of the interaction of grouping columns, innermost first: ``"h1:c1"``."""
    parts = [pd.Series(np.asarray(c, dtype=object)).astype(str) for c in reversed(columns)]
    return parts[0].str.cat(parts[1:], sep=":").to_numpy(dtype=object)
