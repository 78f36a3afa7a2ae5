"""Write data/attenuation/<material>.csv (mass attenuation and energy-absorption coefficients).

Per element Z, at energy E (keV):
  photoelectric  xraylib CS_Photo(Z, E)
  compton        xraylib CS_Compt(Z, E)   (incoherent, with the incoherent scattering function)
  rayleigh       xraylib CS_Rayl(Z, E)    (coherent, form-factor approximation)
  mu_en/rho      NIST XAAMDI v1.4 element mu_en/rho (Hubbell & Seltzer), exact at the NIST
                 energies and interpolated in between as described in tl_common.NistMuEn. xraylib 4.3.0's CS_Energy is NOT used: it is
                 off by up to ~37 % from NIST for water and air at 15-50 keV (see
                 data/attenuation/VERIFICATION.md).
Mixtures: weight-fraction sums (Bragg additivity) of all four quantities.

Run: python3 scripts/make_attenuation.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tl_common as tc  # noqa: E402
import xraylib as xrl  # noqa: E402

COLUMNS = ["energy_kev", "photoelectric_cm2_g", "compton_cm2_g", "rayleigh_cm2_g", "total_cm2_g",
           "energy_absorption_cm2_g"]


def mixture_at(weights: dict, e: float, muen: tc.NistMuEn) -> tuple:
    ph = co = ra = en = 0.0
    for z, w in weights.items():
        p, c, r = tc.xs_element(z, e)
        ph += w * p
        co += w * c
        ra += w * r
        en += w * muen(z, e)
    return ph, co, ra, en


def rows_for(weights: dict, muen: tc.NistMuEn):
    """[(energy_label, evaluation_energy)] sorted; edges give two rows (below, above)."""
    edges = []
    for z in weights:
        for shell, nominal, jump in tc.element_edges(z):
            edges.append((jump, xrl.AtomicNumberToSymbol(z), shell, nominal))
    edges.sort()
    pts = []
    grid = tc.base_grid()
    for e in grid:
        if any(abs(e - j) < 1e-9 * j for j, *_ in edges):
            continue  # the two edge rows replace a grid row that falls on an edge
        pts.append((float(e), float(e), 0))
    for j, *_ in edges:
        pts.append((j, j * (1 - tc.EDGE_EPS), 0))
        pts.append((j, j * (1 + tc.EDGE_EPS), 1))
    pts.sort(key=lambda t: (t[0], t[2]))
    out = []
    for label, e_eval, _ in pts:
        ph, co, ra, en = mixture_at(weights, e_eval, muen)
        tot = ph + co + ra
        out.append([f"{label:.7g}" if label != round(label, 2) else f"{label:.2f}",
                    f"{ph:.6e}", f"{co:.6e}", f"{ra:.6e}", f"{tot:.6e}", f"{en:.6e}"])
    return out, edges


def header(m: tc.Material, edges) -> list[str]:
    edge_txt = ", ".join(f"{s}-{sh} {j:.7g} (xraylib EdgeEnergy {nom:g})" for j, s, sh, nom in edges)
    return [
        f"tomolab attenuation table: {m.name}",
        f"density_g_cm3={m.density:g}",
        f"composition_weight_fraction={m.composition_str()}" + (f" (formula {m.formula})" if m.formula else ""),
        f"composition_source: {m.composition_source}",
        f"density_source: {m.density_source}",
        *( [f"note: {m.note}"] if m.note else [] ),
        f"generated_by: python3 scripts/make_attenuation.py (part of python3 scripts/make_tables.py); "
        f"packages: {tc.pkg_versions()}",
        "columns: mass coefficients in cm^2/g; total_cm2_g = photoelectric + compton + rayleigh; "
        "energy_absorption_cm2_g = mu_en/rho",
        "cross sections: xraylib 4.3.0 CS_Photo / CS_Compt / CS_Rayl per element, mixed by weight fraction",
        "mu_en/rho: NIST XAAMDI v1.4 element tables (Hubbell & Seltzer 2004, NISTIR 5632; "
        "data/reference/nist_xaamdi_elements.csv), exact at NIST energies; in between "
        "q(E)*photo + compton*f_C(E) with f_C the Klein-Nishina x S(x) energy-transfer fraction and "
        "q = 1 - (fluorescence share) interpolated log-log within edge segments; mixed by weight "
        "fraction. xraylib CS_Energy is NOT used (up to 37 % wrong, see VERIFICATION.md)",
        "grid: 1.00-60.00 keV every 0.25 keV, plus two rows at each K/L1-L3/M1-M5 edge of a constituent "
        "in 1-60 keV: same energy, below-edge values first (evaluated at edge*(1-1e-6)) then above-edge "
        "(edge*(1+1e-6)); interpolate log-log piecewise between edges",
        "edge energies are where xraylib's CS_Photo actually jumps (located by bisection); they can "
        "differ from xraylib EdgeEnergy by up to 0.6 % (Cs M1/M2)",
        f"edges: {edge_txt if edge_txt else 'none in 1-60 keV'}",
    ]


def main():
    muen = tc.NistMuEn()
    outdir = os.path.join(tc.DATA, "attenuation")
    for m in tc.materials():
        rows, edges = rows_for(m.weights, muen)
        path = os.path.join(outdir, f"{m.name}.csv")
        tc.write_csv(path, header(m, edges), COLUMNS, rows)
        print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
