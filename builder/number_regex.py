"""Regular expressions that match exactly the numbers of a range, for decoding grammars.

A JSON Schema `minimum`/`maximum` is not something a token mask can enforce digit by digit, but
a regex can: the range is split into digit-string ranges of equal length (`_digits`).
"""

from __future__ import annotations

import math
from fractions import Fraction


def _digits(lo: str, hi: str) -> list[str]:
    """Patterns for the digit strings of one length from `lo` to `hi` (leading zeros kept)."""
    if not lo:
        return [""]
    n = len(lo) - 1
    rest = f"[0-9]{{{n}}}" if n else ""
    if lo[1:] == "0" * n and hi[1:] == "9" * n:
        return [(lo[0] if lo[0] == hi[0] else f"[{lo[0]}-{hi[0]}]") + rest]
    if lo[0] == hi[0]:
        return [lo[0] + p for p in _digits(lo[1:], hi[1:])]
    out = [lo[0] + p for p in _digits(lo[1:], "9" * n)]
    if int(hi[0]) - int(lo[0]) > 1:
        out.append(f"[{int(lo[0]) + 1}-{int(hi[0]) - 1}]" + rest)
    return out + [hi[0] + p for p in _digits("0" * n, hi[1:])]


def _uint(lo: int, hi: int) -> list[str]:
    """Patterns for the integers lo..hi (0 <= lo) written without leading zeros."""
    out = []
    while lo <= hi:
        top = min(hi, 10 ** len(str(lo)) - 1)
        out += _digits(str(lo), str(top))
        lo = top + 1
    return out


def int_regex(lo: int, hi: int) -> str:
    """Integers in [lo, hi], without leading zeros."""
    alts = _uint(max(lo, 0), hi) if hi >= 0 else []
    if lo < 0:
        alts += [f"-({p})" for p in _uint(max(-hi, 1), -lo)]
    return "(" + "|".join(alts) + ")"


def _fraction(lo: int, hi: int, places: int) -> str:
    """'.ddd' (1..places digits) worth lo..hi units of 10**-places; optional when lo is 0."""
    if places == 0:
        return ""
    if lo == 0 and hi == 10**places - 1:
        return f"(\\.[0-9]{{1,{places}}})?"
    alts = []
    for n in range(1, places + 1):
        unit = 10 ** (places - n)
        a, b = -(-lo // unit), hi // unit
        if a <= b:
            alts += _digits(str(a).zfill(n), str(b).zfill(n))
    body = "\\.(" + "|".join(alts) + ")"
    return f"({body})?" if lo == 0 else body


def _unsigned_decimal(lo: Fraction, hi: Fraction, places: int) -> list[str]:
    scale = 10**places
    a, b = math.ceil(lo * scale), math.floor(hi * scale)
    if a > b:
        return []
    ia, ib = a // scale, b // scale
    if ia == ib:
        return [f"{ia}{_fraction(a % scale, b % scale, places)}"]
    out = [f"{ia}{_fraction(a % scale, scale - 1, places)}"]
    if ib - ia > 1:
        out.append("(" + "|".join(_uint(ia + 1, ib - 1)) + ")" + _fraction(0, scale - 1, places))
    return out + [f"{ib}{_fraction(0, b % scale, places)}"]


def decimal_regex(lo: Fraction, hi: Fraction, places: int) -> str:
    """Decimal numbers in [lo, hi] with at most `places` fractional digits."""
    alts = _unsigned_decimal(max(lo, Fraction(0)), hi, places) if hi >= 0 else []
    if lo < 0:
        alts += [f"-({p})" for p in _unsigned_decimal(max(-hi, Fraction(0)), -lo, places)]
    if not alts:
        raise ValueError(f"no number with {places} decimals lies in [{lo}, {hi}]")
    return "(" + "|".join(alts) + ")"
