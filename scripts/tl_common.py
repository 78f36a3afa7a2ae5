"""Shared definitions for the tomolab physics-table generators.

Materials (composition as element weight fractions, density), the energy grid,
edge handling and element-level cross sections. Everything here is evaluated
once, offline, by the scripts in this directory; the Rust code only reads the
CSV files written to data/.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xraylib as xrl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "data")

NIST_ELEMENTS_CSV = os.path.join(DATA, "reference", "nist_xaamdi_elements.csv")


def pkg_versions() -> str:
    """Exact versions of the packages that produce the numbers."""
    import importlib.metadata as md

    names = ["xraylib", "xraydb", "spekpy", "numpy", "scipy", "mucoeff", "xrayatten"]
    out = []
    for n in names:
        try:
            out.append(f"{n}=={md.version(n)}")
        except md.PackageNotFoundError:
            pass
    return " ".join(out) + f" python=={sys.version.split()[0]}"


# ---------------------------------------------------------------------------
# Materials
# ---------------------------------------------------------------------------

HAMMERSTEIN = (
    "Hammerstein GR, Miller DW, White DR, Masterson ME, Woodard HQ, Laughlin JS, "
    "'Absorbed radiation dose in mammography', Radiology 130:485-491 (1979); the same "
    "wt% and densities are used by AAPM TG-195 (Sechopoulos et al., Med Phys 42:5679, 2015) "
    "Case 3 (see shared/reference/dose/tg195_case3_geometry.txt)"
)
NIST_T1 = (
    "NIST XAAMDI Table 1 density (Hubbell & Seltzer, NISTIR 5632, v1.4 2004), "
    "https://physics.nist.gov/PhysRefData/XrayMassCoef/tab1.html"
)
NIST_T2 = (
    "NIST XAAMDI Table 2 composition and density (Hubbell & Seltzer, NISTIR 5632, v1.4 2004), "
    "https://physics.nist.gov/PhysRefData/XrayMassCoef/tab2.html"
)


@dataclass
class Material:
    name: str
    density: float  # g/cm^3
    weights: dict  # Z -> weight fraction (sums to 1)
    composition_source: str
    density_source: str
    note: str = ""
    formula: str = ""
    monte_carlo: bool = False  # also gets a data/scattering table

    def __post_init__(self):
        s = sum(self.weights.values())
        if abs(s - 1.0) > 1e-9:
            self.weights = {z: w / s for z, w in self.weights.items()}

    def composition_str(self) -> str:
        return " ".join(
            f"{xrl.AtomicNumberToSymbol(z)}:{w:.6f}" for z, w in sorted(self.weights.items())
        )


def wt(**kw) -> dict:
    """Weight fractions from element symbols (values in any consistent unit)."""
    return {xrl.SymbolToAtomicNumber(k): float(v) for k, v in kw.items()}


def formula_weights(formula: str) -> dict:
    d = xrl.CompoundParser(formula)
    return {int(z): float(w) for z, w in zip(d["Elements"], d["massFractions"])}


def _trace4(x):
    return dict(P=x, S=x, K=x, Ca=x)


def materials() -> list[Material]:
    m = []
    m.append(Material(
        "adipose", 0.93, wt(H=11.2, C=61.9, N=1.7, O=25.1, **_trace4(0.025)),
        HAMMERSTEIN, HAMMERSTEIN + " (adipose 0.93 g/cm3)", monte_carlo=True))
    m.append(Material(
        "glandular", 1.04, wt(H=10.2, C=18.4, N=3.2, O=67.7, **_trace4(0.125)),
        HAMMERSTEIN, HAMMERSTEIN + " (glandular 1.04 g/cm3)", monte_carlo=True))
    m.append(Material(
        "skin", 1.09, wt(H=9.8, C=17.8, N=5.0, O=66.7, **_trace4(0.175)),
        HAMMERSTEIN, HAMMERSTEIN + " (skin 1.09 g/cm3)", monte_carlo=True))
    m.append(Material(
        "lesion", 1.06, wt(H=10.2, C=18.4, N=3.2, O=67.7, **_trace4(0.125)),
        "glandular-equivalent mass-lesion tissue: Hammerstein et al. 1979 glandular wt% "
        "(as used for the spiculated-mass material of the FDA VICTRE pipeline, "
        "DIDSR/VICTRE_PIPELINE Victre/Constants.py: glandular__5-120keV material at 1.06 g/cm3; "
        "Johns & Yaffe, Phys Med Biol 32:675 (1987) measured infiltrating-duct-carcinoma "
        "attenuation close to fibroglandular tissue)",
        "FDA VICTRE pipeline mass-lesion density 1.06 g/cm3 (DIDSR/VICTRE_PIPELINE, Victre/Constants.py, "
        "'MASS MATERIAL')",
        note="mass coefficients identical to glandular; only the density differs", monte_carlo=True))
    m.append(Material(
        "hydroxyapatite", 3.16, formula_weights("Ca10(PO4)6(OH)2"),
        "stoichiometric hydroxyapatite Ca10(PO4)6(OH)2 (type II microcalcification mineral)",
        "3.16 g/cm3 calculated (X-ray) density; measured 3.14-3.21 (Anthony, Bideaux, Bladh & Nichols, "
        "Handbook of Mineralogy, Mineralogical Society of America: 'Hydroxylapatite')",
        formula="Ca10(PO4)6(OH)2", monte_carlo=True))
    m.append(Material(
        "calcium_oxalate", 2.20, formula_weights("CaC2O4"),
        "anhydrous calcium oxalate CaC2O4 (type I microcalcification mineral)",
        "2.2 g/cm3 (The Merck Index 10th ed. 1983 entry 1732 / Hawley's Condensed Chemical "
        "Dictionary 10th ed. 1993, as compiled in MFA CAMEO 'Calcium oxalate'); NOTE the FDA VICTRE "
        "pipeline uses 1.781 g/cm3 for its calcification material",
        formula="CaC2O4", monte_carlo=True))
    m.append(Material("aluminium", 2.699, wt(Al=1), "pure element", NIST_T1, monte_carlo=True))
    m.append(Material("rhodium", 12.41, wt(Rh=1), "pure element", NIST_T1))
    m.append(Material("molybdenum", 10.22, wt(Mo=1), "pure element", NIST_T1))
    m.append(Material("silver", 10.50, wt(Ag=1), "pure element", NIST_T1))
    m.append(Material("beryllium", 1.848, wt(Be=1), "pure element", NIST_T1))
    m.append(Material(
        "selenium", 4.28, wt(Se=1), "pure element (amorphous/vitreous Se photoconductor)",
        "4.28 g/cm3 for vitreous (amorphous) selenium (CRC Handbook of Chemistry and Physics, "
        "'Physical constants of inorganic compounds': Se vitreous 4.28; gray trigonal Se is 4.81 "
        "and NIST Table 1 lists 4.50 for the element)", monte_carlo=True))
    m.append(Material("csi", 4.51, formula_weights("CsI"), NIST_T2 + " (Cesium Iodide)",
                      NIST_T2 + " (Cesium Iodide 4.510 g/cm3)", formula="CsI", monte_carlo=True))
    m.append(Material(
        "pmma", 1.19, wt(H=8.0541, C=59.9846, O=31.9613),
        "AAPM TG-195 PMMA (C5H8O2) wt% (Sechopoulos et al. 2015; "
        "shared/reference/dose/tg195_case3_geometry.txt)",
        "AAPM TG-195 / NIST Table 2 (Polymethyl Methacrylate) 1.19 g/cm3", monte_carlo=True))
    m.append(Material(
        "air", 0.001205, wt(C=0.000124, N=0.755268, O=0.231781, Ar=0.012827),
        NIST_T2 + " (Air, Dry (near sea level))", NIST_T2 + " (1.205E-03 g/cm3)", monte_carlo=True))
    m.append(Material("water", 1.0, formula_weights("H2O"), "H2O (stoichiometric)",
                      NIST_T2 + " (Water, Liquid 1.000 g/cm3)", formula="H2O", monte_carlo=True))
    m.append(Material("tungsten", 19.30, wt(W=1), "pure element", NIST_T1))
    m.append(Material("polystyrene", 1.06, formula_weights("C8H8"), "(C8H8)n stoichiometric",
                      NIST_T2 + " (Polystyrene 1.060 g/cm3)", formula="C8H8", monte_carlo=True))
    return m


def material(name: str) -> Material:
    for m in materials():
        if m.name == name:
            return m
    raise KeyError(name)


# Compositions used only for verification against NIST compound tables.
NIST_COMPOUNDS = {
    "Water, Liquid": formula_weights("H2O"),
    "Air, Dry (near sea level)": wt(C=0.000124, N=0.755268, O=0.231781, Ar=0.012827),
    "Adipose Tissue (ICRU-44)": wt(H=0.114, C=0.598, N=0.007, O=0.278, Na=0.001, S=0.001, Cl=0.001),
    "Breast Tissue (ICRU-44)": wt(H=0.106, C=0.332, N=0.030, O=0.527, Na=0.001, P=0.001, S=0.002,
                                  Cl=0.001),
}

# ---------------------------------------------------------------------------
# Energy grid and edges
# ---------------------------------------------------------------------------

E_MIN, E_MAX, E_STEP = 1.0, 60.0, 0.25
EDGE_EPS = 1e-6
SHELLS = [("K", xrl.K_SHELL), ("L1", xrl.L1_SHELL), ("L2", xrl.L2_SHELL), ("L3", xrl.L3_SHELL),
          ("M1", xrl.M1_SHELL), ("M2", xrl.M2_SHELL), ("M3", xrl.M3_SHELL), ("M4", xrl.M4_SHELL),
          ("M5", xrl.M5_SHELL)]


def base_grid() -> np.ndarray:
    n = int(round((E_MAX - E_MIN) / E_STEP)) + 1
    return np.round(E_MIN + E_STEP * np.arange(n), 10)


def _photo_jump(z: int, e0: float) -> float:
    """Locate the discontinuity of xraylib's CS_Photo near the nominal edge e0.

    xraylib's EdgeEnergy() and the edge positions inside its photoionisation
    tables differ slightly for some elements (e.g. Mo K: EdgeEnergy 19.9995 keV,
    CS_Photo jumps at 20.000 keV). The table must put its below/above rows at the
    real discontinuity of the tabulated cross section, so we bisect for it.
    """
    def g(e):  # remove most of the ~E^-3 fall-off so the jump dominates
        return xrl.CS_Photo(z, e) * e ** 3

    # coarse scan of +-1 % for the largest step up, then bisect inside that step
    es = np.linspace(e0 * (1 - 1e-2), e0 * (1 + 1e-2), 4001)
    gs = np.array([g(e) for e in es])
    step = gs[1:] / gs[:-1]
    i = int(np.argmax(step))
    if not step[i] > 1.005:
        raise RuntimeError(f"no photo jump found near {e0} keV for Z={z}")
    lo, hi, g_lo, g_hi = es[i], es[i + 1], gs[i], gs[i + 1]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        g_mid = g(mid)
        if g_mid > 0.5 * (g_lo + g_hi):
            hi, g_hi = mid, g_mid
        else:
            lo, g_lo = mid, g_mid
        if hi - lo < 1e-11 * e0:
            break
    return hi


def element_edges(z: int, nominal_in_range_only: bool = False) -> list[tuple[str, float, float]]:
    """(shell, nominal xraylib EdgeEnergy, located CS_Photo jump) for jumps in [1, 60] keV.

    Shells whose nominal energy is just below 1 keV are scanned too, because
    xraylib's tabulated jump can sit above 1 keV (Cs M3: nominal 0.9976 keV).
    """
    out = []
    for name, sh in SHELLS:
        try:
            e = xrl.EdgeEnergy(z, sh)
        except ValueError:
            continue
        if not (0.98 * E_MIN <= e <= E_MAX):
            continue
        try:
            j = float(_photo_jump(z, e))
        except RuntimeError:
            if e < E_MIN:
                continue
            raise
        if E_MIN <= j <= E_MAX and (not nominal_in_range_only or E_MIN <= e):
            out.append((name, e, j))
    return out


# ---------------------------------------------------------------------------
# NIST XAAMDI element tables (mu/rho, mu_en/rho), vendored in data/reference
# ---------------------------------------------------------------------------

def load_nist_elements() -> dict:
    """Z -> (energy_keV array, mu_rho array, mu_en_rho array), edge rows duplicated."""
    out: dict = {}
    with open(NIST_ELEMENTS_CSV) as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    hdr = rows[0]
    iz, ie, imu, ien = (hdr.index(k) for k in ("z", "energy_mev", "mu_over_rho_cm2_g",
                                                "mu_en_over_rho_cm2_g"))
    for r in rows[1:]:
        z = int(r[iz])
        out.setdefault(z, ([], [], []))
        out[z][0].append(float(r[ie]) * 1000.0)
        out[z][1].append(float(r[imu]))
        out[z][2].append(float(r[ien]))
    return {z: tuple(np.array(a) for a in v) for z, v in out.items()}


ME_KEV = 510.99895
HC_KEV_A = 12.398419843320026


@lru_cache(maxsize=None)
def compton_transfer_fraction(z: int, e: float) -> float:
    """Mean fraction of the photon energy given to the electron in incoherent scattering:
    Klein-Nishina weighted by xraylib's incoherent scattering function S(x, Z)."""
    mu = np.linspace(-1.0, 1.0, 801)
    k = e / ME_KEV
    ratio = 1.0 / (1.0 + k * (1.0 - mu))  # E'/E
    kn = ratio ** 2 * (ratio + 1.0 / ratio - (1.0 - mu ** 2))
    x = e / HC_KEV_A * np.sqrt((1.0 - mu) / 2.0)
    sf = np.array([xrl.SF_Compt(z, max(float(q), 1e-3)) if q > 0 else 0.0 for q in x])
    w = kn * sf
    return float(np.trapezoid(w * (1.0 - ratio), mu) / np.trapezoid(w, mu))


def compton_tr(z: int, e: float) -> float:
    """Incoherent energy-transfer coefficient (cm^2/g)."""
    return xrl.CS_Compt(z, e) * compton_transfer_fraction(z, float(e))


class NistMuEn:
    """Element mu_en/rho from the NIST XAAMDI v1.4 element tables.

    mu_en/rho = q(E) * tau(E) + sigma_incoh(E) * f_C(E), where tau and sigma_incoh are
    xraylib's CS_Photo and CS_Compt, f_C is the mean Compton energy-transfer fraction
    (Klein-Nishina x S(x), `compton_transfer_fraction`) and q(E) ~ 1 - X/E is the
    fraction of photoabsorbed energy that is not re-emitted as fluorescence.
    q is formed at the NIST table energies, q = ((mu_en/rho)_NIST - sigma_incoh f_C)/tau,
    limited to <= 1, and interpolated linearly in (ln E, ln q) within each
    edge-bounded segment. At NIST table energies the result equals NIST's value; in
    between it follows the shapes of the photo and Compton cross sections, which
    are very different (a single log-log line through the sum, or through
    mu_en/(tau+sigma), is off by up to 5 % at 25 keV for C and O).
    NIST edge energies are mapped onto the located xraylib jump energies so the
    segments of numerator and denominator coincide.
    """

    def __init__(self):
        self.tab = load_nist_elements()
        self._seg: dict = {}

    def _segments(self, z: int):
        if z in self._seg:
            return self._seg[z]
        e, mu, muen = self.tab[z]
        # split at duplicated energies (edges)
        cut = [0] + [i + 1 for i in range(len(e) - 1) if e[i + 1] == e[i]] + [len(e)]
        segs = []
        xr_edges = sorted(j for (_, _, j) in element_edges(z, nominal_in_range_only=True))
        nist_edges = [e[c] for c in cut[1:-1]]
        nist_edges_in = [x for x in nist_edges if E_MIN <= x <= E_MAX]
        if len(nist_edges_in) != len(xr_edges):
            raise RuntimeError(f"Z={z}: NIST edges {nist_edges_in} vs xraylib {xr_edges}")
        emap = {}
        for a, b in zip(nist_edges_in, xr_edges):
            if abs(a - b) / b > 1e-2:
                raise RuntimeError(f"Z={z}: edge mismatch NIST {a} vs xraylib {b}")
            emap[a] = b
        for k in range(len(cut) - 1):
            if e[cut[k]] > 200.0:  # only the diagnostic range is needed
                break
            stop = cut[k + 1]
            while stop - cut[k] > 2 and e[stop - 2] > 200.0:
                stop -= 1
            s = slice(cut[k], stop)
            ee = e[s].copy()
            # move the segment's end points that are edges onto xraylib's edges
            ee = np.array([emap.get(x, x) for x in ee])
            # drop interior NIST points that end up on the wrong side of a moved edge
            # (e.g. NIST's 20.000 keV point next to the Mo K edge, which xraylib puts at 20.00005)
            keep = [i for i in range(len(ee))
                    if i in (0, len(ee) - 1) or ee[0] < ee[i] < ee[-1]]
            ee = ee[keep]
            mu_seg = muen[s][keep]
            q = []
            for i, x in enumerate(ee):
                xe = x
                if i == 0 and k > 0:
                    xe = x * (1 + EDGE_EPS)
                elif i == len(ee) - 1:
                    xe = x * (1 - EDGE_EPS)
                qi = (mu_seg[i] - compton_tr(z, xe)) / xrl.CS_Photo(z, xe)
                q.append(min(max(qi, 1e-6), 1.0))
            segs.append((ee[0], ee[-1], np.log(ee), np.log(np.array(q))))
        self._seg[z] = segs
        return segs

    def __call__(self, z: int, e: float) -> float:
        """mu_en/rho (cm^2/g) at e (keV); e must not sit exactly on an edge."""
        segs = self._segments(z)
        for lo, hi, le, lq in segs:
            if lo <= e <= hi:
                break
        else:
            raise ValueError(f"{e} keV outside NIST table for Z={z}")
        q = min(1.0, float(np.exp(np.interp(np.log(e), le, lq))))
        return q * xrl.CS_Photo(z, e) + compton_tr(z, e)


def xs_element(z: int, e: float) -> tuple[float, float, float]:
    return xrl.CS_Photo(z, e), xrl.CS_Compt(z, e), xrl.CS_Rayl(z, e)


def write_csv(path: str, header_lines: list[str], columns: list[str], rows: list[list]):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="\n") as f:
        for h in header_lines:
            f.write("# " + h + "\n" if h else "#\n")
        f.write(",".join(columns) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")
