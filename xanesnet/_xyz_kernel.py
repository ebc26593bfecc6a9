"""Numba kernel parsing one XANESNET xyz frame from raw bytes (fast path of the reader).

The kernel accepts only the plain layout (positive integer count; comment; ``count`` rows of an
integer Z in 1..118 and three decimal numbers separated by spaces/tabs). Anything else --
malformed input, but also legal input outside the fast path such as ``26.0`` as Z or more than
15 significant digits -- returns :data:`BAD`, and the caller re-reads the frame with the
line-by-line Python parser, which either accepts it or raises an error naming the line.

Numbers are converted exactly as ``float()`` does: a decimal with mantissa ``m <= 2**53`` and
power of ten ``|p| <= 22`` is ``m * 10**p`` or ``m / 10**-p``, one correctly rounded IEEE
operation on two exactly representable doubles (Clinger's fast path); other numbers are
refused (BAD), never approximated.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0  #: a frame was parsed
END = 1  #: only blank lines remain
BAD = 2  #: not parseable here; use the Python parser from ``offset``/``line``
SYMBOL = 3  #: the first atom row starts with a letter (standard xyz with element symbols)

_POW10 = np.array([10.0**k for k in range(23)])
_MAX_MANTISSA = 2**53
_MAX_Z = 118


@njit(cache=True, nogil=True)
def _skip_blanks(buf, p):  # spaces, tabs, carriage returns
    n = buf.shape[0]
    while p < n and (buf[p] == 32 or buf[p] == 9 or buf[p] == 13):
        p += 1
    return p


@njit(cache=True, nogil=True)
def _parse_float(buf, p):
    """Return (ok, value, new position) for a decimal number starting at ``p``."""
    n = buf.shape[0]
    neg = False
    if p < n and (buf[p] == 45 or buf[p] == 43):
        neg = buf[p] == 45
        p += 1
    mantissa = 0
    digits = 0
    frac = 0
    while p < n and 48 <= buf[p] <= 57:
        mantissa = mantissa * 10 + (buf[p] - 48)
        digits += 1
        p += 1
        if mantissa > _MAX_MANTISSA:
            return False, 0.0, p
    if p < n and buf[p] == 46:
        p += 1
        while p < n and 48 <= buf[p] <= 57:
            mantissa = mantissa * 10 + (buf[p] - 48)
            digits += 1
            frac += 1
            p += 1
            if mantissa > _MAX_MANTISSA:
                return False, 0.0, p
    if digits == 0:
        return False, 0.0, p
    exponent = 0
    if p < n and (buf[p] == 101 or buf[p] == 69):
        p += 1
        eneg = False
        if p < n and (buf[p] == 45 or buf[p] == 43):
            eneg = buf[p] == 45
            p += 1
        edigits = 0
        while p < n and 48 <= buf[p] <= 57:
            exponent = exponent * 10 + (buf[p] - 48)
            edigits += 1
            p += 1
            if edigits > 3:
                return False, 0.0, p
        if edigits == 0:
            return False, 0.0, p
        if eneg:
            exponent = -exponent
    power = exponent - frac
    if power > 22 or power < -22:
        return False, 0.0, p
    value = float(mantissa)
    if power >= 0:
        value = value * _POW10[power]
    else:
        value = value / _POW10[-power]
    return True, -value if neg else value, p


@njit(cache=True, nogil=True)
def scan_frame(buf, p, line):
    """Parse the frame starting at byte ``p`` (line number ``line``, 1-based).

    Args:
        buf: (n_bytes,) uint8 file contents.
        p: byte offset where the frame (or blank lines before it) starts.
        line: line number of the line starting at ``p``.

    Returns:
        ``(status, numbers (n,) int64, positions (n, 3) float64, next offset, next line,
        comment start, comment end, frame line)``; arrays are empty unless status is OK.
        ``frame line`` is the line of the count (where a BAD frame starts).
    """
    size = buf.shape[0]
    no_numbers = np.empty(0, np.int64)
    no_positions = np.empty((0, 3), np.float64)
    # Blank lines before the frame.
    while True:
        q = _skip_blanks(buf, p)
        if q >= size:
            return END, no_numbers, no_positions, q, line, 0, 0, line
        if buf[q] != 10:
            break
        p = q + 1
        line += 1
    start, start_line = p, line
    q = _skip_blanks(buf, p)
    count = 0
    digits = 0
    while q < size and 48 <= buf[q] <= 57 and digits < 10:
        count = count * 10 + (buf[q] - 48)
        digits += 1
        q += 1
    q = _skip_blanks(buf, q)
    if digits == 0 or count == 0 or q >= size or buf[q] != 10:
        return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
    q += 1
    line += 1
    comment_start = q
    while q < size and buf[q] != 10:
        q += 1
    comment_end = q
    if q >= size:
        return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
    q += 1
    line += 1
    numbers = np.empty(count, np.int64)
    positions = np.empty((count, 3), np.float64)
    for i in range(count):
        q = _skip_blanks(buf, q)
        if q >= size:
            return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
        c = buf[q]
        if i == 0 and ((65 <= c <= 90) or (97 <= c <= 122)):
            return SYMBOL, no_numbers, no_positions, start, start_line, 0, 0, start_line
        z = 0
        digits = 0
        while q < size and 48 <= buf[q] <= 57 and digits < 4:
            z = z * 10 + (buf[q] - 48)
            digits += 1
            q += 1
        if digits == 0 or z < 1 or z > _MAX_Z:
            return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
        numbers[i] = z
        for k in range(3):
            r = _skip_blanks(buf, q)
            if r == q:  # no separator
                return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
            ok, value, q = _parse_float(buf, r)
            if not ok:
                return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
            positions[i, k] = value
        q = _skip_blanks(buf, q)
        if q < size:
            if buf[q] != 10:
                return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
            q += 1
            line += 1
        elif i != count - 1:
            return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
    return OK, numbers, positions, q, line, comment_start, comment_end, start_line
