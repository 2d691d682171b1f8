"""Data columns read as the user meant them, checked before any conversion.

Numbers are numbers whatever their dtype (numpy, pandas nullable, or an object
column holding only Python/numpy numbers); text, logicals and pandas Categoricals
are factors. A column mixing numbers and text is an error naming the stray values
and their rows, unless the formula asks for a factor of it. Missing values are an
error naming the column, the count and the first row.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .deparse import format_level

__all__ = [
    "MixedColumn",
    "check_frame",
    "check_present",
    "checked_column",
    "group_labels",
    "group_values",
    "missing_mask",
    "read_variable",
]



class MixedColumn:
    """An object column mixing numbers and text: an error wherever a number or a level
    is needed, text for ``factor()`` (R would read the whole column as text)."""

    def __init__(self, name, values, stray_rows):
        self.name = name
        self.values = values
        self.stray_rows = stray_rows

    def error(self):
        """The ValueError explaining the column and how to fix it."""
        rows = self.stray_rows[:5]
        shown = ", ".join(repr(self.values[i]) for i in rows)
        more = f" and {len(self.stray_rows) - len(rows)} more" if len(self.stray_rows) > 5 else ""
        return ValueError(
            f"Column {self.name!r} mixes numbers and text: {shown} (row(s) "
            f"{', '.join(str(int(i)) for i in rows)}{more}) are not numbers. Convert the "
            f"column to numbers (e.g. pd.to_numeric(data[{self.name!r}], errors='coerce'), "
            f"then remove or impute the missing values), or write factor({self.name}) in the "
            "formula if it is categorical."
        )

    def as_text(self):
        """Every value as text, numbers printed as R prints them."""
        return np.asarray([format_level(v) for v in self.values], dtype=object)


def check_frame(data):
    """Refuse anything but a pandas DataFrame.

    Parameters
    ----------
    data : object

    Raises
    ------
    TypeError
        Unless ``data`` is a pandas DataFrame.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"The formula interface needs a pandas DataFrame; got {type(data).__name__}."
        )


def check_present(data, names, formula, what="variable"):
    """Refuse data without every column in ``names``.

    Parameters
    ----------
    data : DataFrame
    names : sequence of str
    formula : str
        Quoted in the message.
    what : str, default="variable"
        What the columns are, for the message.

    Raises
    ------
    ValueError
        Naming the absent columns and listing the data's.
    """
    missing = [v for v in names if v not in data.columns]
    if missing:
        raise ValueError(
            f"The formula {formula!r} uses {what}(s) {missing} that are not columns "
            f"of the data (columns: {list(data.columns)})."
        )


def missing_mask(column):
    """Where a column has missing values (NaN, None, NA), without converting it.

    Parameters
    ----------
    column : Series

    Returns
    -------
    ndarray of bool
    """
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return np.zeros(len(column), dtype=bool)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return np.isnan(column.to_numpy())
    if isinstance(dtype, pd.CategoricalDtype):
        return column.array.codes < 0
    return column.isna().to_numpy()


def checked_column(data, name):
    """The column ``name`` of ``data``, refused if duplicated or with missing values.

    Parameters
    ----------
    data : DataFrame
        Has a column ``name``.
    name : str

    Returns
    -------
    Series

    Raises
    ------
    ValueError
        For several columns of that name, or missing values (count and first row).
    """
    column = data[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"The data has several columns named {name!r}.")
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return column
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        values = column.to_numpy()
        if not values.size or not np.isnan(np.minimum.reduce(values)):  # NaN propagates
            return column
    nulls = missing_mask(column)
    if nulls.any():
        raise ValueError(
            f"Column {name!r} has {int(nulls.sum())} missing value(s) (NaN/NA), "
            f"first at row {int(np.flatnonzero(nulls)[0])}; rows are never dropped "
            "silently: remove or impute them first (complete_rows() gives R's na.omit rows)."
        )
    return column


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _read_object(name, values):
    """An object column: numbers, logicals, text, or a :class:`MixedColumn`."""
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        return values
    if kind == "boolean":
        return values.astype(bool)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        return values.astype(np.float64)
    if kind == "empty":
        return np.empty(0)
    is_number = np.fromiter((_is_number(v) for v in values), bool, len(values))
    is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    ok = is_number | is_text
    if ok.all():
        if is_number.any() and is_text.any():
            return MixedColumn(name, values, np.flatnonzero(is_text))
        return values.astype(np.float64) if is_number.all() else values
    odd = values[np.flatnonzero(~ok)[0]]
    types = sorted({type(v).__name__ for v in values})
    raise ValueError(
        f"Column {name!r} holds values of types {types} (e.g. {odd!r}); a formula variable "
        "must be numbers, logicals or text."
    )


def read_variable(data, name):
    """The values of column ``name`` for the formula's expressions.

    Parameters
    ----------
    data : DataFrame
    name : str

    Returns
    -------
    ndarray or pandas.Categorical or MixedColumn
        float/int numbers, bool logicals, object text, a Categorical as it is.
    """
    column = data[name]
    dtype = column.dtype if isinstance(column, pd.Series) else None
    if isinstance(dtype, np.dtype) and dtype.kind in "iufb":  # the usual case, first
        values = column.to_numpy()
        if dtype.kind != "f" or not values.size or not np.isnan(np.minimum.reduce(values)):
            return values  # no missing value: NaN propagates through min, one pass
    column = checked_column(data, name)  # missing values, duplicated names: the errors
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iufb":
            return column.to_numpy()
        if dtype == object:
            return _read_object(name, column.to_numpy())
    elif isinstance(dtype, pd.CategoricalDtype):
        return column.array
    elif pd.api.types.is_bool_dtype(dtype):
        return column.to_numpy(dtype=bool)
    elif pd.api.types.is_integer_dtype(dtype):
        return column.to_numpy(dtype=np.int64)
    elif pd.api.types.is_float_dtype(dtype):
        return column.to_numpy(dtype=np.float64)
    elif pd.api.types.is_string_dtype(dtype):
        return column.to_numpy(dtype=object)
    raise ValueError(
        f"Column {name!r} has dtype {dtype}, which a formula cannot use: convert it to "
        "numbers, logicals or text first."
    )


def group_values(data, name, fitting):
    """Labels of one grouping variable.

    Numbers and text are returned as they are; at fit a Categorical (and a logical, as
    the factor FALSE/TRUE) stays a Categorical, whose codes are its levels.

    Parameters
    ----------
    data : DataFrame
    name : str
    fitting : bool

    Returns
    -------
    ndarray or pandas.Categorical
    """
    column = checked_column(data, name)
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return column.to_numpy()
    if isinstance(dtype, pd.CategoricalDtype):
        return column.array if fitting else column.to_numpy(dtype=object)
    if pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=bool)
        return (
            pd.Categorical(values, categories=[False, True]) if fitting else values.astype(object)
        )
    if pd.api.types.is_integer_dtype(dtype):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return column.to_numpy(dtype=np.float64)
    values = column.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "integer":
        return values.astype(np.int64)
    if kind in ("floating", "mixed-integer-float"):
        return values.astype(np.float64)
    if kind in ("mixed-integer", "mixed"):
        read = _read_object(name, values)
        if isinstance(read, MixedColumn):
            # R's factor() of the column as text: 1 and "1" are one level. Text that
            # is not a number as R prints one ("n/a") is a stray value, refused.
            text = read.as_text()
            if all(_prints_as_number(text[i]) for i in read.stray_rows):
                return text
            raise read.error()
    return values


def _prints_as_number(text):
    """Whether ``text`` is a number as R prints it (``"1"``, ``"2.5"``, not ``"1.0"``)."""
    try:
        return format_level(float(text)) == text
    except ValueError:
        return False


def group_labels(values_by_name, group):
    """Group label per row of a grouping factor.

    Parameters
    ----------
    values_by_name : dict
        Column name -> values from :func:`group_values`.
    group : tuple of str
        The factor's variables, in lme4's order.

    Returns
    -------
    ndarray or pandas.Categorical
        One variable's values as they are, or ``"v1:v2"`` strings for an interaction
        (numbers printed as R prints them).
    """
    if len(group) == 1:
        return values_by_name[group[0]]
    parts = []
    for name in group:
        column = pd.Series(values_by_name[name])
        if column.dtype.kind in "iu":
            parts.append(column.astype(str))
        else:
            parts.append(column.map(format_level).astype(str))
    return parts[0].str.cat(parts[1:], sep=":").to_numpy(dtype=object)
