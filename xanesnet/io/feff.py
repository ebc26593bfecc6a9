"""FEFF files: the ``xmu.dat`` spectrum and the ``feff.inp`` cluster.

Edge energy
-----------
FEFF prints each ``xmu.dat`` row as ``omega e k mu mu0 chi``: ``omega`` is the absolute photon
energy (eV) and ``e`` the same energy on FEFF's internal scale, so ``omega - e`` is one constant
per file. That constant is the edge energy used here, :attr:`XmuSpectrum.e0` (eV, absolute):
the median of ``omega - e`` over the rows, which agree to the print precision of 0.001 eV per
column. It equals the ``E0_eV`` column of the OmniXAS Cu data's ``index.csv`` (so grids
"relative to E0" mean ``omega - e0 = e``), and is FEFF's computed value (8990.9–9006.4 eV in
the Cu set), not the tabulated K-edge energy (8979 eV for Cu).

FEFF's Fermi level, the absorption threshold, lies at ``e = Mu`` (the header's ``Mu=`` value,
−13.9…−3.8 eV in the Cu set): there the wave number ``k`` is 0, and above it
``k = sqrt(2 m (e - Mu)) / hbar``; rows below it carry negative ``k``. Its absolute photon
energy is :attr:`XmuSpectrum.threshold_energy` = ``e0 + Mu``.

``mu`` is normalised by FEFF to the atomic cross-section 50 eV above the Fermi level (``mu0``
is 0.983–1.009 at ``e = Mu + 50`` across the OmniXAS Cu set); that normalisation constant is
the header's ``xsedge+ 50`` number, :attr:`XmuSpectrum.xsedge`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["XmuSpectrum", "read_xmu", "read_feff_inp", "FEFF_ENERGY_PRINT_PRECISION"]

#: Print precision (eV) of the ``omega`` and ``e`` columns of ``xmu.dat``: 3 decimals.
FEFF_ENERGY_PRINT_PRECISION = 0.001

_XMU_COLUMNS = ("omega", "e", "k", "mu", "mu0", "chi")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?"
_HEADER_NUMBERS = {
    "xsedge": re.compile(rf"xsedge\s*\+\s*50.*?mu\s+({_NUMBER})"),
    "fermi_level": re.compile(rf"\bMu\s*=\s*({_NUMBER})\s*eV"),
    "core_hole_width": re.compile(rf"Gam_ch\s*=\s*({_NUMBER})"),
    "s02": re.compile(rf"S02\s*=\s*({_NUMBER})"),
    "fms_radius": re.compile(rf"rfms\s*=\s*({_NUMBER})"),
}
_ABSORBER_Z = re.compile(r"\bAbs\s+Z\s*=\s*(\d+)")
_POTENTIAL_Z = re.compile(r"\bPot\s+(\d+)\s+Z\s*=\s*(\d+)")
_VERSION = re.compile(r"\bFEFF\s+(\d[\w.]*)")


def _to_float(text: str) -> float:
    # Fortran may print double-precision exponents with D.
    return float(text.replace("D", "E").replace("d", "e"))


@dataclass(frozen=True)
class XmuSpectrum:
    """One FEFF ``xmu.dat`` spectrum.

    Attributes:
        path (str): The file it was read from.
        omega (numpy.ndarray): (n,) absolute photon energy, eV; strictly increasing, uniform in
            ``k`` (not in energy).
        e (numpy.ndarray): (n,) energy relative to FEFF's threshold, eV (``omega - e0`` to print
            precision).
        k (numpy.ndarray): (n,) photoelectron wave number, 1/Å (negative below the threshold).
        mu, mu0, chi (numpy.ndarray): (n,) absorption normalised at threshold + 50 eV, its atomic
            background, and ``mu - mu0``.
        e0 (float): Edge energy, eV, absolute: the median of ``omega - e`` (see the module
            docstring).
        xsedge (float or None): The header's ``xsedge+ 50`` normalisation constant (cross-section at
            threshold + 50 eV, FEFF units); None when the header lacks it.
        fermi_level (float or None): Header ``Mu=`` value, eV, on the scale of ``e``: the threshold,
            where ``k = 0``.
        core_hole_width (float or None): Header ``Gam_ch``, the core-hole lifetime width, eV.
        s02 (float or None): Amplitude reduction factor from the header.
        fms_radius (float or None): Full-multiple-scattering radius ``rfms``, Å.
        absorber_z (int or None): Atomic number of the absorber (header ``Abs Z=``).
        potentials (dict[int, int]): Potential index → atomic number for the scatterers listed in
            the header (``Pot i Z=``).
        feff_version (str or None): FEFF version from the first header line, e.g. ``"9.9.1"``.
        header (tuple[str, ...]): All comment lines, verbatim.
    """

    path: str
    omega: np.ndarray = field(repr=False)
    e: np.ndarray = field(repr=False)
    k: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    mu0: np.ndarray = field(repr=False)
    chi: np.ndarray = field(repr=False)
    e0: float
    xsedge: float | None = None
    fermi_level: float | None = None
    core_hole_width: float | None = None
    s02: float | None = None
    fms_radius: float | None = None
    absorber_z: int | None = None
    potentials: dict[int, int] = field(default_factory=dict)
    feff_version: str | None = None
    header: tuple[str, ...] = field(default=(), repr=False)

    @property
    def n_points(self) -> int:
        """Number of rows."""
        return int(self.omega.shape[0])

    @property
    def threshold_energy(self) -> float | None:
        """Absolute photon energy (eV) of FEFF's Fermi level ``e0 + Mu``; None without ``Mu=``."""
        return None if self.fermi_level is None else self.e0 + self.fermi_level

    @property
    def relative_energies(self) -> np.ndarray:
        """(n,) ``omega - e0``, eV: the energies relative to the edge energy, exact in ``omega``."""
        return self.omega - self.e0


def _read_text_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc})") from None
    if not text.strip():
        raise ValueError(f"{path}: empty file")
    return text.splitlines()


def _parse_header(lines: list[str]) -> dict[str, object]:
    found: dict[str, object] = {"potentials": {}}
    for line in lines:
        for name, pattern in _HEADER_NUMBERS.items():
            if name not in found and (match := pattern.search(line)):
                found[name] = _to_float(match.group(1))
        if "absorber_z" not in found and (match := _ABSORBER_Z.search(line)):
            found["absorber_z"] = int(match.group(1))
        if match := _POTENTIAL_Z.search(line):
            found["potentials"][int(match.group(1))] = int(match.group(2))  # type: ignore[index]
        if "feff_version" not in found and (match := _VERSION.search(line)):
            found["feff_version"] = match.group(1)
    return found


def read_xmu(path: str | os.PathLike, min_rows: int = 2) -> XmuSpectrum:
    """Read a FEFF ``xmu.dat`` file.

    Comment lines start with ``#`` (FEFF's header, including the column line
    ``omega e k mu mu0 chi``); blank lines are skipped; every other line must hold at least the
    six numbers ``omega e k mu mu0 chi`` (further columns are ignored).

    Args:
        path (str or os.PathLike): The ``xmu.dat`` file.
        min_rows (int): Fewest data rows accepted.

    Returns:
        XmuSpectrum: Arrays of shape ``(n,)``, float64, and the header numbers; ``e0`` as defined in
            the module docstring.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Naming the file and the 1-based line: a short or non-numeric row, a non-finite
            value, ``omega`` not strictly increasing, ``omega - e`` not constant to print precision,
            or fewer than ``min_rows`` rows.
    """
    path = Path(path)
    lines = _read_text_lines(path, "xmu.dat")
    header: list[str] = []
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            header.append(line)
            continue
        fields = stripped.split()
        if len(fields) < len(_XMU_COLUMNS):
            raise ValueError(
                f"{path}, line {number}: expected 6 columns 'omega e k mu mu0 chi', "
                f"got {stripped[:80]!r}"
            )
        try:
            values = [_to_float(text) for text in fields[: len(_XMU_COLUMNS)]]
        except ValueError:
            raise ValueError(
                f"{path}, line {number}: non-numeric value in {stripped[:80]!r}"
            ) from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{path}, line {number}: non-finite value in {stripped[:80]!r}")
        rows.append(values)
        line_numbers.append(number)
    if len(rows) < min_rows:
        raise ValueError(
            f"{path}: {len(rows)} data rows 'omega e k mu mu0 chi', at least {min_rows} needed"
        )
    data = np.asarray(rows, dtype=np.float64)
    omega, e = data[:, 0], data[:, 1]
    steps = np.diff(omega)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"{path}, line {line_numbers[bad]}: omega not strictly increasing "
            f"({omega[bad - 1]} then {omega[bad]})"
        )
    offsets = omega - e
    e0 = float(np.median(offsets))
    # Each column is rounded to 0.001 eV, so omega - e may differ from e0 by up to 0.001.
    spread = np.abs(offsets - e0)
    limit = 2 * FEFF_ENERGY_PRINT_PRECISION
    if np.any(spread > limit):
        bad = int(np.argmax(spread > limit))
        raise ValueError(
            f"{path}, line {line_numbers[bad]}: omega - e = {offsets[bad]:.3f} eV differs from "
            f"the edge energy {e0:.3f} eV of the other rows"
        )
    found = _parse_header(header)
    return XmuSpectrum(
        path=str(path),
        omega=np.ascontiguousarray(omega),
        e=np.ascontiguousarray(e),
        k=np.ascontiguousarray(data[:, 2]),
        mu=np.ascontiguousarray(data[:, 3]),
        mu0=np.ascontiguousarray(data[:, 4]),
        chi=np.ascontiguousarray(data[:, 5]),
        e0=e0,
        xsedge=found.get("xsedge"),  # type: ignore[arg-type]
        fermi_level=found.get("fermi_level"),  # type: ignore[arg-type]
        core_hole_width=found.get("core_hole_width"),  # type: ignore[arg-type]
        s02=found.get("s02"),  # type: ignore[arg-type]
        fms_radius=found.get("fms_radius"),  # type: ignore[arg-type]
        absorber_z=found.get("absorber_z"),  # type: ignore[arg-type]
        potentials=dict(found["potentials"]),  # type: ignore[call-overload]
        feff_version=found.get("feff_version"),  # type: ignore[arg-type]
        header=tuple(header),
    )


# --------------------------------------------------------------------------------------------
# feff.inp
# --------------------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    # FEFF comments: a line starting with '*', or text after '*', '!' or '#'.
    for marker in ("*", "!", "#"):
        cut = line.find(marker)
        if cut >= 0:
            line = line[:cut]
    return line.strip()


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_feff_inp(path: str | os.PathLike) -> Atoms:
    """Read the cluster of a FEFF ``feff.inp``: the ``ATOMS`` block, elements from ``POTENTIALS``.

    Args:
        path (str or os.PathLike): The ``feff.inp`` file.

    Returns:
        ase.Atoms: The cluster (no cell, ``pbc`` False), Cartesian positions in Å as written, the
            absorber (potential index 0) at index 0 and the other atoms in file order.
            ``arrays["feff_ipot"]`` holds each atom's potential index, shape ``(n_atoms,)`` int64;
            ``info`` holds ``source`` (the path) and ``absorber`` (0).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Naming the file and the 1-based line: no ``POTENTIALS`` or ``ATOMS`` block, a
            malformed row, an atom whose potential index is not listed, an atomic number outside
            1–118, or not exactly one absorber (potential 0).
    """
    from ase import Atoms

    path = Path(path)
    lines = _read_text_lines(path, "feff.inp")
    potentials: dict[int, int] = {}
    atoms_rows: list[tuple[int, float, float, float, int]] = []
    block: str | None = None
    seen_blocks: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        fields = line.split()
        head = fields[0].upper()
        if head in ("POTENTIALS", "ATOMS"):
            block = head
            seen_blocks.add(head)
            continue
        if head == "END":
            break
        if block is None or not (_is_int(fields[0]) or block == "ATOMS"):
            block = None
            continue
        if block == "POTENTIALS":
            if len(fields) < 2 or not _is_int(fields[1]):
                raise ValueError(
                    f"{path}, line {number}: expected 'ipot Z tag ...' in POTENTIALS, "
                    f"got {raw.strip()[:80]!r}"
                )
            ipot, z = int(fields[0]), int(fields[1])
            if not 1 <= z <= 118:
                raise ValueError(f"{path}, line {number}: atomic number {z} outside 1-118")
            if ipot in potentials:
                raise ValueError(f"{path}, line {number}: potential {ipot} listed twice")
            potentials[ipot] = z
        else:
            try:
                x, y, z_coord = (float(v) for v in fields[:3])
                ipot = int(fields[3])
            except (ValueError, IndexError):
                # Any other card ends the ATOMS block.
                if fields[0][:1].isalpha():
                    block = None
                    continue
                raise ValueError(
                    f"{path}, line {number}: expected 'x y z ipot ...' in ATOMS, "
                    f"got {raw.strip()[:80]!r}"
                ) from None
            if not all(math.isfinite(v) for v in (x, y, z_coord)):
                raise ValueError(f"{path}, line {number}: non-finite coordinate")
            atoms_rows.append((number, x, y, z_coord, ipot))
    for needed in ("POTENTIALS", "ATOMS"):
        if needed not in seen_blocks:
            raise ValueError(f"{path}: no {needed} block")
    if not atoms_rows:
        raise ValueError(f"{path}: the ATOMS block lists no atoms")
    for number, *_, ipot in atoms_rows:
        if ipot not in potentials:
            raise ValueError(
                f"{path}, line {number}: potential index {ipot} is not in the POTENTIALS block "
                f"(listed: {sorted(potentials)})"
            )
    absorbers = [i for i, row in enumerate(atoms_rows) if row[4] == 0]
    if len(absorbers) != 1:
        lines_of = [atoms_rows[i][0] for i in absorbers]
        raise ValueError(
            f"{path}: expected exactly one absorber (potential 0) in ATOMS, found "
            f"{len(absorbers)}" + (f" on lines {lines_of}" if lines_of else "")
        )
    order = absorbers + [i for i in range(len(atoms_rows)) if i != absorbers[0]]
    rows = [atoms_rows[i] for i in order]
    ipots = np.array([row[4] for row in rows], dtype=np.int64)
    atoms = Atoms(
        numbers=[potentials[int(i)] for i in ipots],
        positions=np.array([row[1:4] for row in rows], dtype=np.float64),
        pbc=False,
    )
    atoms.arrays["feff_ipot"] = ipots
    atoms.info["source"] = str(path)
    atoms.info["absorber"] = 0
    return atoms
