"""Write data/scattering/<material>.csv: mixture form factor squared and incoherent scattering function.

Convention (independent-atom approximation, per ATOM of the mixture):
  n_i = w_i / A_i                        (mol of atoms of element i per gram)
  F2_mix(x) = sum_i n_i F_i(x)^2 / sum_i n_i
  S_mix(x)  = sum_i n_i S_i(x)   / sum_i n_i
with x = sin(theta/2)/lambda in 1/Angstrom, F_i = xraylib FF_Rayl(Z_i, x) and
S_i = xraylib SF_Compt(Z_i, x). Hence F2_mix(0) = <Z^2> and S_mix(inf) -> <Z> per atom.
Differential cross sections per gram of material:
  dsigma_R/dOmega = N_A * sum_i n_i * r_e^2 (1 + cos^2 theta)/2 * F2_mix(x)
  dsigma_C/dOmega = N_A * sum_i n_i * dsigma_KN/dOmega(E, theta) * S_mix(x)
(the file header gives atoms_per_gram = N_A * sum_i n_i). A Monte Carlo samples
the Rayleigh angle from (1+cos^2)/2 * F2_mix(x(E,theta)) and the Compton angle
from Klein-Nishina * S_mix(x). Integrating these over solid angle reproduces the
xraylib CS_Rayl / CS_Compt mixture values; the achieved agreement is written into
each header. Molecular interference (which changes small-angle coherent scattering
of real tissues/water) is NOT included.

Run: python3 scripts/make_scattering.py
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tl_common as tc  # noqa: E402
import xraylib as xrl  # noqa: E402

N_A = 6.02214076e23
R_E = 2.8179403262e-13  # cm
HC = 12.398419843320026  # keV*Angstrom
ME = 510.99895  # keV


def x_grid() -> np.ndarray:
    return np.concatenate([[0.0], np.logspace(-3, 1, 199)])


def mix(m: tc.Material, x: np.ndarray):
    n = {z: w / xrl.AtomicWeight(z) for z, w in m.weights.items()}
    ntot = sum(n.values())
    f2 = np.zeros_like(x)
    s = np.zeros_like(x)
    for z, nz in n.items():
        # x = 0: F = Z and S = 0 exactly (xraylib's SF_Compt table starts at 1e-3 1/A)
        f2 += nz * np.array([xrl.FF_Rayl(z, float(q)) ** 2 if q > 0 else float(z) ** 2 for q in x])
        s += nz * np.array([xrl.SF_Compt(z, max(float(q), 1e-3)) if q > 0 else 0.0 for q in x])
    return f2 / ntot, s / ntot, N_A * ntot


def integrate_check(m: tc.Material, e: float, xg, f2, s, apg) -> tuple[float, float]:
    """(rayleigh, compton) cm^2/g from the tables vs xraylib mixture, as ratios."""
    mu = np.linspace(-1.0, 1.0, 20001)  # cos(theta)
    th = np.arccos(mu)
    x = e / HC * np.sin(th / 2)
    f2i = np.interp(x, xg, f2)
    si = np.interp(x, xg, s)
    ray = apg * np.trapezoid(R_E ** 2 * (1 + mu ** 2) / 2 * f2i, mu) * 2 * np.pi
    k = e / ME
    ratio = 1.0 / (1 + k * (1 - mu))
    kn = R_E ** 2 / 2 * ratio ** 2 * (ratio + 1 / ratio - (1 - mu ** 2))
    com = apg * np.trapezoid(kn * si, mu) * 2 * np.pi
    ray_x = sum(w * xrl.CS_Rayl(z, e) for z, w in m.weights.items())
    com_x = sum(w * xrl.CS_Compt(z, e) for z, w in m.weights.items())
    return ray / ray_x, com / com_x


def main():
    xg = x_grid()
    outdir = os.path.join(tc.DATA, "scattering")
    for m in tc.materials():
        if not m.monte_carlo:
            continue
        f2, s, apg = mix(m, xg)
        checks = []
        for e in (10.0, 20.0, 30.0, 50.0):
            r, c = integrate_check(m, e, xg, f2, s, apg)
            checks.append(f"{e:g} keV: rayleigh {100 * (r - 1):+.2f} %, compton {100 * (c - 1):+.2f} %")
        hdr = [
            f"tomolab scattering table: {m.name}",
            f"density_g_cm3={m.density:g}",
            f"composition_weight_fraction={m.composition_str()}",
            f"atoms_per_gram={apg:.6e}  (N_A * sum_i w_i/A_i)",
            f"mean_Z2_per_atom={f2[0]:.6f}  mean_Z_per_atom={sum((w / xrl.AtomicWeight(z)) * z for z, w in m.weights.items()) / (apg / N_A):.6f}",
            "x_inv_angstrom: x = sin(theta/2)/lambda [1/Angstrom] = E[keV]/12.39842 * sin(theta/2); "
            "grid 0 then 199 log-spaced points 1e-3..10",
            "form_factor_squared: F2_mix(x) = sum_i n_i F_i(x)^2 / sum_i n_i, n_i = w_i/A_i "
            "(per-atom average over the mixture; F_i = xraylib FF_Rayl)",
            "incoherent_scattering_function: S_mix(x) = sum_i n_i S_i(x) / sum_i n_i (S_i = xraylib SF_Compt)",
            "per gram: dsigma_R/dOmega = atoms_per_gram * r_e^2 (1+cos^2 theta)/2 * F2_mix; "
            "dsigma_C/dOmega = atoms_per_gram * dsigma_KN/dOmega * S_mix",
            "independent-atom approximation (no molecular interference); interpolate linearly in x",
            "integral check vs xraylib CS_Rayl/CS_Compt mixture (trapezoid in cos theta, linear interp in x): "
            + "; ".join(checks),
            f"generated_by: python3 scripts/make_scattering.py (part of python3 scripts/make_tables.py); "
            f"packages: {tc.pkg_versions()}",
            f"composition_source: {m.composition_source}",
        ]
        rows = [[f"{q:.6e}", f"{a:.6e}", f"{b:.6e}"] for q, a, b in zip(xg, f2, s)]
        path = os.path.join(outdir, f"{m.name}.csv")
        tc.write_csv(path, hdr, ["x_inv_angstrom", "form_factor_squared",
                                 "incoherent_scattering_function"], rows)
        print(f"wrote {path}: " + "; ".join(checks))


if __name__ == "__main__":
    main()
