"""The periodic product grid of the split-operator (DESIGN §6), with optional *folded* axes.

A plain axis holds n points covering [centre − half, centre + half) and is transformed by the FFT.
A folded axis holds a function of definite parity about the centre (even: ψ(−y) = ψ(y); odd:
ψ(−y) = −ψ(y)), as the exchange of two identical particles makes ψ in their difference
coordinate: only the points at y ≥ 0 are kept (even: y = 0, dx, …, half, n/2 + 1 of them; odd:
the n/2 − 1 interior ones, ψ vanishing at 0 and ±half), and the FFT of the full axis becomes the
type-1 cosine or sine transform of the half (Parseval weights 1 at the end points, 2 inside).
Both give the full grid's numbers to rounding at a quarter of the points for two folded axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft


def kept_points(n: int, parity: int) -> int:
    """Points a folded axis of an n-point grid keeps: n/2 + 1 when even, n/2 − 1 when odd."""
    return n // 2 + 1 if parity > 0 else n // 2 - 1


@dataclass(frozen=True)
class Grid:
    """``n`` points per axis on ``dims`` axes, spacing 2·half/n; the leading ``len(parity)``
    axes are folded with the given parities (+1 even, −1 odd; n must be even)."""

    dims: int
    n: int
    half: float
    centre: float = 0.0
    parity: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.parity) > self.dims or any(p not in (1, -1) for p in self.parity):
            raise ValueError(f"parity must hold ±1 for at most {self.dims} axes, got {self.parity}")
        if self.parity and self.n % 2:
            raise ValueError(f"a folded grid needs an even number of points, got {self.n}")

    @property
    def dx(self) -> float:
        return 2 * self.half / self.n

    @property
    def cell(self) -> float:
        """Volume of one grid cell."""
        return self.dx**self.dims

    @property
    def folded(self) -> int:
        """How many leading axes are folded."""
        return len(self.parity)

    def _index(self, a: int) -> np.ndarray:
        """Which points of the full axis (counted from the centre for a folded one) axis a keeps."""
        if a >= self.folded:
            return np.arange(self.n)
        first = 0 if self.parity[a] > 0 else 1  # an odd axis drops its zeros at 0 and n/2
        return np.arange(first, first + kept_points(self.n, self.parity[a]))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(kept_points(self.n, p) for p in self.parity) + (self.n,) * (self.dims - self.folded)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def axis(self) -> np.ndarray:
        """The n points of one full axis."""
        return self.centre - self.half + self.dx * np.arange(self.n)

    def points(self, a: int) -> np.ndarray:
        """The points axis ``a`` holds."""
        return self.axis() if a >= self.folded else self.centre + self.dx * self._index(a)

    def weights(self, a: int) -> np.ndarray:
        """How many points of the full axis each point of axis ``a`` stands for (also the
        Parseval weight of each transform coefficient)."""
        index = self._index(a)
        w = np.ones(index.size)
        if a < self.folded:
            w[(index > 0) & (index < self.n // 2)] = 2.0
        return w

    def wavenumbers(self, a: int = -1) -> np.ndarray:
        """The angular wave numbers of axis ``a`` (a plain one, by default), in transform order."""
        if 0 <= a < self.folded:
            return 2 * np.pi / (self.n * self.dx) * self._index(a)
        return 2 * np.pi * sfft.fftfreq(self.n, d=self.dx)

    def transform(self, psi: np.ndarray, workers: int, inverse: bool = False) -> None:
        """ψ ← its spectral coefficients (or back, ``inverse``), in place: FFT over the plain
        axes, type-1 cosine (even) or sine (odd) transforms over the folded ones, the latter on
        the real and imaginary parts at once through a real view of ψ."""
        plain = tuple(range(self.folded, self.dims))
        if plain:
            fft = sfft.ifftn if inverse else sfft.fftn
            _in_place(psi, fft(psi, axes=plain, workers=workers, overwrite_x=True))
        if not self.folded:
            return
        real = psi.view(psi.real.dtype).reshape(*psi.shape, 2)
        for parity in (1, -1):
            axes = tuple(a for a, p in enumerate(self.parity) if p == parity)
            if axes:
                fn = (sfft.idctn if inverse else sfft.dctn) if parity > 0 else (sfft.idstn if inverse else sfft.dstn)
                _in_place(real, fn(real, type=1, axes=axes, workers=workers, overwrite_x=True))

    def unfold(self, values: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Weighted values (each point's share times its weight, as a mass) over the grid axes
        ``axes`` (one per array axis), as the same values on the full axes: each folded axis
        divided by its weights and mirrored about the centre."""
        for pos, a in enumerate(axes):
            if a >= self.folded:
                continue
            v = np.moveaxis(values, pos, 0) / self.weights(a).reshape(-1, *[1] * (values.ndim - 1))
            m = self.n // 2
            if self.parity[a] < 0:  # zeros where an odd ψ vanishes: the centre and the edge
                zero = np.zeros((1, *v.shape[1:]))
                v = np.concatenate([zero, v, zero])
            full = np.concatenate([v[m:0:-1], v[:m]])  # points −half … −dx, then 0 … half − dx
            values = np.moveaxis(full, 0, pos)
        return values


def _in_place(target: np.ndarray, out: np.ndarray) -> None:
    """Copy a transform's result back unless it was computed in place (pocketfft usually is)."""
    if not np.may_share_memory(out, target):
        target[...] = out
