"""Air-kerma HVL of a binned spectrum, using only the committed attenuation tables."""

from __future__ import annotations

import numpy as np

import tl_tables as tt

NSUB = 20  # sub-samples per bin: transmission and E*mu_en are averaged over the bin


class Beam:
    def __init__(self, bin_lo_kev: np.ndarray, width_kev: float, photons: np.ndarray):
        """photons per bin; bins [lo, lo + width); flat within a bin."""
        self.lo = np.asarray(bin_lo_kev, float)
        self.w = width_kev
        self.n = np.asarray(photons, float)
        # sub-sample energies (mid-points of NSUB equal parts of each bin)
        f = (np.arange(NSUB) + 0.5) / NSUB
        self.es = self.lo[:, None] + self.w * f[None, :]
        self._att: dict = {}
        self._air = tt.Attenuation("air")
        self.kerma_w = self.es * self._air(self.es.ravel(), "energy_absorption_cm2_g").reshape(self.es.shape)

    def mu_lin(self, material: str) -> np.ndarray:
        if material not in self._att:
            a = tt.Attenuation(material)
            self._att[material] = a(self.es.ravel(), "total_cm2_g").reshape(self.es.shape) * a.density
        return self._att[material]  # 1/cm

    def transmission(self, filters: list[tuple[str, float]]) -> np.ndarray:
        """Per sub-sample transmission through [(material, thickness_mm)]."""
        t = np.ones_like(self.es)
        for mat, mm in filters:
            t = t * np.exp(-self.mu_lin(mat) * mm * 0.1)
        return t

    def kerma(self, filters) -> float:
        """Relative air kerma (arbitrary units)."""
        return float(np.sum(self.n[:, None] / NSUB * self.transmission(filters) * self.kerma_w))

    def fluence(self, filters) -> np.ndarray:
        return self.n * self.transmission(filters).mean(axis=1)

    def mean_energy(self, filters) -> float:
        t = self.transmission(filters)
        num = np.sum(self.n[:, None] * t * self.es)
        return float(num / np.sum(self.n[:, None] * t))

    def hvl_mm_al(self, filters, frac: float = 0.5) -> float:
        k0 = self.kerma(filters)
        lo, hi = 0.0, 0.05
        while self.kerma(filters + [("aluminium", hi)]) > frac * k0:
            hi *= 2
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.kerma(filters + [("aluminium", mid)]) > frac * k0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)
