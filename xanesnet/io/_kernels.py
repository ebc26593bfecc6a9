"""Numba kernels parsing XANESNET xyz frames from raw bytes (fast paths of the readers).

The kernel accepts only the plain layout (positive integer count; comment; ``count`` rows of an
integer Z in 1..118 and three decimal numbers separated by spaces/tabs). Anything else --
malformed input, but also legal input outside the fast path such as ``26.0`` as Z or more than
15 significant digits -- returns :data:`BAD`, and the caller re-reads the frame with the
line-by-line Python parser, which either accepts it or raises an error naming the line.

Numbers are converted exactly as ``float()`` does: a decimal with mantissa ``m <= 2**53`` and
power of ten ``|p| <= 22`` is ``m * 10**p`` or ``m / 10**-p``, one correctly rounded IEEE
operation on two exactly representable doubles (Clinger's fast path); other numbers are
refused (BAD), never approximated.

:func:`scan_frame` parses one frame (``xanesnet.io.read``, one call per frame);
:func:`scan_files` parses a whole block of one-frame files in one call
(:mod:`xanesnet.io.chunks`), with the same acceptance and the same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xanesnet.frames import MAX_ATOMIC_NUMBER  # a compile-time constant in the kernels

OK = 0  #: a frame was parsed
END = 1  #: only blank lines remain
BAD = 2  #: not parseable here; use the Python parser from ``offset``/``line``
SYMBOL = 3  #: the first atom row starts with a letter (standard xyz with element symbols)

_POW10 = np.array([10.0**k for k in range(23)])
_MAX_MANTISSA = 2**53


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
def _header(buf, q):
    """The count line and the comment line of a frame starting at byte ``q``.
    Returns (count, comment start, comment end = its newline); count 0: not a plain header."""
    size = buf.shape[0]
    q = _skip_blanks(buf, q)
    count = 0
    digits = 0
    while q < size and 48 <= buf[q] <= 57 and digits < 10:
        count = count * 10 + (buf[q] - 48)
        digits += 1
        q += 1
    q = _skip_blanks(buf, q)
    if digits == 0 or count == 0 or q >= size or buf[q] != 10:
        return 0, 0, 0
    q += 1
    comment_start = q
    while q < size and buf[q] != 10:
        q += 1
    if q >= size:
        return 0, 0, 0
    if count > (size - q) // 4 + 1:  # rows need >= 7 bytes each: no room (and no huge arrays)
        return 0, 0, 0
    return count, comment_start, q


@njit(cache=True, nogil=True)
def _rows(buf, q, count, numbers, positions, at):
    """Parse ``count`` atom rows starting at byte ``q`` into ``numbers[at:]``/``positions[at:]``.

    Returns ``(status, next offset, rows ended by a newline)``: OK, SYMBOL (the first row starts
    with a letter) or BAD.
    """
    size = buf.shape[0]
    newlines = 0
    for i in range(count):
        q = _skip_blanks(buf, q)
        if q >= size:
            return BAD, q, newlines
        c = buf[q]
        if i == 0 and ((65 <= c <= 90) or (97 <= c <= 122)):
            return SYMBOL, q, newlines
        z = 0
        digits = 0
        while q < size and 48 <= buf[q] <= 57 and digits < 4:
            z = z * 10 + (buf[q] - 48)
            digits += 1
            q += 1
        if digits == 0 or z < 1 or z > MAX_ATOMIC_NUMBER:
            return BAD, q, newlines
        numbers[at + i] = z
        for k in range(3):
            r = _skip_blanks(buf, q)
            if r == q:  # no separator
                return BAD, q, newlines
            ok, value, q = _parse_float(buf, r)
            if not ok:
                return BAD, q, newlines
            positions[at + i, k] = value
        q = _skip_blanks(buf, q)
        if q < size:
            if buf[q] != 10:
                return BAD, q, newlines
            q += 1
            newlines += 1
        elif i != count - 1:
            return BAD, q, newlines
    return OK, q, newlines


@njit(cache=True, nogil=True)
def _blank_from(buf, p):
    """Whether only blank lines (spaces, tabs, carriage returns, newlines) follow byte ``p``."""
    size = buf.shape[0]
    while p < size:
        c = buf[p]
        if c != 32 and c != 9 and c != 13 and c != 10:
            return False
        p += 1
    return True


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
    count, comment_start, comment_end = _header(buf, p)
    if count == 0:
        return BAD, no_numbers, no_positions, start, start_line, 0, 0, start_line
    numbers = np.empty(count, np.int64)
    positions = np.empty((count, 3), np.float64)
    status, q, newlines = _rows(buf, comment_end + 1, count, numbers, positions, 0)
    if status != OK:
        return status, no_numbers, no_positions, start, start_line, 0, 0, start_line
    return OK, numbers, positions, q, line + 2 + newlines, comment_start, comment_end, start_line


@njit(cache=True, nogil=True)
def _reserve(numbers, positions, cursor, count):
    """The output arrays, grown (doubling) if ``count`` more atoms do not fit after ``cursor``."""
    capacity = numbers.shape[0]
    if cursor + count <= capacity:
        return numbers, positions
    capacity = max(2 * capacity, cursor + count)
    grown_numbers = np.empty(capacity, np.int32)
    grown_positions = np.empty((capacity, 3), np.float64)
    grown_numbers[:cursor] = numbers[:cursor]
    grown_positions[:cursor] = positions[:cursor]
    return grown_numbers, grown_positions


@njit(cache=True, nogil=True)
def scan_files(buf, offsets, codes, special):
    """Parse many whole files at once, each expected to hold exactly one frame.

    Args:
        buf: (n_bytes,) uint8 contents of the files, end to end.
        offsets: (n_files + 1,) int64 byte offsets; file ``f`` is
            ``buf[offsets[f]:offsets[f + 1]]``.
        codes: symbol lookup of :func:`scan_symbol_rows`.
        special: comment words that ase.io interprets (see :func:`_info_only_comment`).

    Returns:
        ``(parsed (n_files,) bool, counts (n_files,) int64, numbers (n_atoms,) int32,
        positions (n_atoms, 3) float64 Å)``: the atoms of the parsed files end to end, in file
        order; ``counts`` is 0 for files not parsed. A file is parsed when :func:`scan_frame`
        reads one OK frame from its start and only blank lines follow, or when it is a
        standard xyz file (element symbols) that ase.io reads as one molecule with bare info
        flags (:func:`_scan_symbol_file`); every other file (empty, several frames, anything
        refused here) is left to the caller's per-file reader, which gives the same frame or
        the error.
    """
    n_files = offsets.shape[0] - 1
    parsed = np.zeros(n_files, np.bool_)
    counts = np.zeros(n_files, np.int64)
    numbers = np.empty(max(16, buf.shape[0] // 32), np.int32)
    positions = np.empty((numbers.shape[0], 3), np.float64)
    cursor = 0
    for f in range(n_files):
        data = buf[offsets[f] : offsets[f + 1]]
        # scan_frame's checks, parsing straight into the output (no arrays per file); a first
        # row that starts with a letter sends the file to the symbol reader.
        q = _skip_blanks(data, 0)
        while q < data.shape[0] and data[q] == 10:  # blank lines before the frame
            q = _skip_blanks(data, q + 1)
        count, _, comment_end = _header(data, q)
        if count == 0:
            continue  # not plain: scan_frame would say BAD or END too
        numbers, positions = _reserve(numbers, positions, cursor, count)
        status, q, _ = _rows(data, comment_end + 1, count, numbers, positions, cursor)
        if status == SYMBOL:
            ok, z, r = _scan_symbol_file(data, codes, special)
            if not ok:
                continue
            count = z.shape[0]
            numbers, positions = _reserve(numbers, positions, cursor, count)
            for i in range(count):
                numbers[cursor + i] = z[i]
                positions[cursor + i, 0] = r[i, 0]
                positions[cursor + i, 1] = r[i, 1]
                positions[cursor + i, 2] = r[i, 2]
        elif status != OK or not _blank_from(data, q):
            continue
        parsed[f] = True
        counts[f] = count
        cursor += count
    return parsed, counts, numbers[:cursor], positions[:cursor]


@njit(cache=True, nogil=True)
def _symbol_rows(buf, q, n, codes, numbers, positions):
    """Parse ``n`` rows ``Sym x y z`` from byte ``q`` into ``numbers``/``positions``.
    Returns (ok, offset after the last row's newline, or the end of ``buf``)."""
    size = buf.shape[0]
    for i in range(n):
        q = _skip_blanks(buf, q)
        start = q
        while q < size and q - start < 3 and ((65 <= buf[q] <= 90) or (97 <= buf[q] <= 122)):
            q += 1
        length = q - start
        if length == 0 or length > 2 or q >= size or (buf[q] != 32 and buf[q] != 9):
            return False, q
        key = buf[start] * 256 + (buf[start + 1] if length == 2 else 0)
        z = codes[key]
        if z < 0:
            return False, q
        numbers[i] = z
        # the coordinates and the row end as in scan_frame, written out: a shared helper
        # made the block scan ~15 % slower (not inlined into the row loop)
        for k in range(3):
            r = _skip_blanks(buf, q)
            if r == q:  # no separator
                return False, q
            ok, value, q = _parse_float(buf, r)
            if not ok:
                return False, q
            positions[i, k] = value
        q = _skip_blanks(buf, q)
        if q < size:
            if buf[q] != 10:
                return False, q
            q += 1
        elif i != n - 1:
            return False, q
    return True, q


@njit(cache=True, nogil=True)
def scan_symbol_rows(buf, n, codes):
    """Parse exactly ``n`` rows ``Sym x y z`` (the atom rows of a plain extended XYZ frame).

    Args:
        buf: (n_bytes,) uint8, the rows end to end (ASCII; the last newline optional).
        n: number of rows.
        codes: (65536,) int64 atomic number of each one- or two-letter symbol, indexed by
            ``first_byte << 8 | second_byte`` (second byte 0 for one letter); -1 = unknown.

    Returns:
        ``(ok, numbers (n,) int64, positions (n, 3) float64)``. Not ok for anything beyond
        this plain layout (unknown symbol, other separators, a number ``float()`` might read
        differently, more or fewer than four fields on a row): the caller's general parser
        decides then.
    """
    numbers = np.empty(n, np.int64)
    positions = np.empty((n, 3), np.float64)
    ok, q = _symbol_rows(buf, 0, n, codes, numbers, positions)
    return ok and q >= buf.shape[0], numbers, positions


@njit(cache=True, nogil=True)
def _is_blank(c):
    return c == 32 or c == 9 or c == 13


@njit(cache=True, nogil=True)
def _info_only_comment(buf, start, end, special):
    """Whether ase.io reads this standard-xyz comment line as bare info flags only: plain
    characters (letters, digits, blanks, ``_-.,:()/+``; no ``=``, quotes, brackets or
    escapes) and no word that ase.io gives a meaning (``special``: (n_words, width) uint8
    lowercase, zero-padded), compared case-insensitively."""
    for p in range(start, end):
        c = buf[p]
        if not (
            (48 <= c <= 57)
            or (65 <= c <= 90)
            or (97 <= c <= 122)
            or _is_blank(c)
            or c == 95  # _
            or c == 45  # -
            or c == 46  # .
            or c == 44  # ,
            or c == 58  # :
            or c == 40  # (
            or c == 41  # )
            or c == 47  # /
            or c == 43  # +
        ):
            return False
    width = special.shape[1]
    p = start
    while p < end:
        while p < end and _is_blank(buf[p]):
            p += 1
        word = p
        while p < end and not _is_blank(buf[p]):
            p += 1
        length = p - word
        if length == 0 or length > width:
            continue
        for w in range(special.shape[0]):
            same = special[w, length - 1] != 0 and (length == width or special[w, length] == 0)
            k = 0
            while same and k < length:
                c = buf[word + k]
                if 65 <= c <= 90:
                    c += 32
                same = c == special[w, k]
                k += 1
            if same:
                return False
    return True


@njit(cache=True, nogil=True)
def _scan_symbol_file(buf, codes, special):
    """One standard-xyz file (count, comment, ``Sym x y z`` rows, then only blank lines)
    whose comment carries no cell, periodicity, properties or results.
    Returns (ok, numbers (n,) int64, positions (n, 3) float64)."""
    size = buf.shape[0]
    no_numbers = np.empty(0, np.int64)
    no_positions = np.empty((0, 3), np.float64)
    count, comment, q = _header(buf, 0)
    if count == 0 or not _info_only_comment(buf, comment, q, special):
        return False, no_numbers, no_positions
    numbers = np.empty(count, np.int64)
    positions = np.empty((count, 3), np.float64)
    ok, q = _symbol_rows(buf, q + 1, count, codes, numbers, positions)
    if not ok or numbers.min() < 1:  # "X" (Z = 0): the per-file reader reports it
        return False, no_numbers, no_positions
    while q < size:  # only blank lines may follow
        if not (_is_blank(buf[q]) or buf[q] == 10):
            return False, no_numbers, no_positions
        q += 1
    return True, numbers, positions
