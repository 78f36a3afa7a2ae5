"""Readers for the committed tables (the same conventions a Rust loader must follow)."""

from __future__ import annotations

import csv
import os

import numpy as np

import tl_common as tc


def read_table(path: str):
    """Return (header_lines, column_names, float array rows x cols)."""
    hdr = []
    with open(path) as f:
        lines = f.read().splitlines()
    body = []
    for ln in lines:
        if ln.startswith("#"):
            hdr.append(ln[1:].strip())
        else:
            body.append(ln)
    rows = list(csv.reader(body))
    cols = rows[0]
    data = np.array([[float(v) for v in r] for r in rows[1:]])
    return hdr, cols, data


class Attenuation:
    """Log-log piecewise interpolation of a data/attenuation table.

    Rows with equal energy are edges (below-edge row first). Between two
    consecutive distinct energies the coefficient is interpolated linearly in
    (ln E, ln mu); at an edge the segment on the requested side is used.
    """

    def __init__(self, name: str):
        path = os.path.join(tc.DATA, "attenuation", f"{name}.csv")
        self.header, self.cols, self.data = read_table(path)
        self.name = name
        self.density = float(next(h for h in self.header if h.startswith("density_g_cm3="))
                             .split("=")[1])
        self.e = self.data[:, 0]

    def __call__(self, e, column: str = "total_cm2_g") -> np.ndarray:
        e = np.atleast_1d(np.asarray(e, dtype=float))
        y = self.data[:, self.cols.index(column)]
        # index of the last row with energy <= E (ties: the above-edge row)
        i = np.searchsorted(self.e, e, side="right") - 1
        i = np.clip(i, 0, len(self.e) - 2)
        e0, e1 = self.e[i], self.e[i + 1]
        y0, y1 = y[i], y[i + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.log(e / e0) / np.log(e1 / e0)
            out = np.exp(np.log(y0) + t * (np.log(y1) - np.log(y0)))
        return out


def read_spectra(target: str):
    """(bin centres keV, {kvp: photons/mm^2/mAs per bin at 1 m})."""
    path = os.path.join(tc.DATA, "spectra", f"{target}_unfiltered.csv")
    _, cols, data = read_table(path)
    return data[:, 0], {int(c[3:]): data[:, j] for j, c in enumerate(cols) if c.startswith("kvp")}
