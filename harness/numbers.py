"""Numbers as the leaderboard prints them: one format per table column (fixed or scientific
notation for every cell of it, so 9.05e-05 never sits beside 0.0428), values at a metric's
significant digits and spreads at two."""

from __future__ import annotations

import math

#: below or at/above these magnitudes a column switches to scientific notation
_SMALL, _LARGE = 1e-3, 1e5
#: a spread below this fraction of its value is rounding noise between identical seeds
_NOISE = 1e-9


def scientific(values) -> bool:
    """Whether a column holding ``values`` is printed in scientific notation: when any finite,
    non-zero value is below 1e-3 or at least 1e5 in magnitude."""
    return any(math.isfinite(v) and v != 0 and not _SMALL <= abs(v) < _LARGE for v in values)


def significant(value: float, digits: int, sci: bool) -> str:
    """``value`` at ``digits`` significant digits, in scientific notation or fixed (trailing
    zeros dropped, as %g drops them); '—' for NaN or None."""
    if value is None or not math.isfinite(value):
        return "—"
    if sci:
        return f"{value:.{digits - 1}e}"
    if value == 0:
        return "0"
    places = digits - 1 - math.floor(math.log10(abs(value)))
    text = f"{round(value, places):.{max(0, places)}f}"  # 1234.5 → 1230 at 3 digits
    return text.rstrip("0").rstrip(".") if "." in text else text


def with_spread(value: float, spread: float, digits: int, sci: bool) -> str:
    """'value ± spread' (the spread at two significant digits in the same notation); the value
    alone where there is no spread (one seed) or it is zero (every seed gave the same value, up
    to rounding)."""
    text = significant(value, digits, sci)
    if (spread is None or not math.isfinite(spread) or text == "—"
            or spread <= _NOISE * abs(value)):
        return text
    return f"{text} ± {significant(spread, 2, sci)}"


def interval(low: float, high: float, digits: int, sci: bool) -> str:
    """'[low, high]', or '—' when there is no interval."""
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{significant(low, digits, sci)}, {significant(high, digits, sci)}]"
