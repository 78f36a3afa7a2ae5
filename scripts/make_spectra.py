"""Write data/spectra/<target>_unfiltered.csv (W, Mo, Rh) from SpekPy.

Model: SpekPy v2 ('casim' physics, SpekPy's default for reflection targets,
which covers W, Mo and Rh anodes down to 10 kV), mu_data_source 'pene' (the
default for the v2 physics; only used for self-absorption in the target).
No filtration at all: no window, no air (SpekPy applies none unless asked).
The window, filters, paddle and air are applied in tomolab's code.
Anode (target) angle: ANODE_ANGLE_DEG, the representative mammographic target
angle of IEC 60522-1:2020 (10 or 11 degrees), see data/spectra/README.md.

Units: photons per mm^2 per mAs per 0.5 keV bin at 1000 mm from the focal spot,
on the central axis. Bin edges at multiples of 0.5 keV, centres 0.25..49.75 keV.
SpekPy's own dk=0.5 grid has exactly these edges for integer kVp, so no re-binning
is done (checked below); bins below 1 keV (not modelled by SpekPy) and above the
kVp are zero.

Run: python3 scripts/make_spectra.py
"""

import os
import sys

import numpy as np
import spekpy as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tl_common as tc  # noqa: E402

ANODE_ANGLE_DEG = 10.0
TARGETS = ["W", "Mo", "Rh"]
KVPS = list(range(20, 50))
DK = 0.5
CENTRES = 0.25 + DK * np.arange(100)  # 0.25 .. 49.75
Z_CM = 100.0
PHYSICS = "casim"
MU_SOURCE = "pene"


def spectrum(target: str, kvp: int) -> np.ndarray:
    s = sp.Spek(kvp=kvp, th=ANODE_ANGLE_DEG, dk=DK, targ=target, physics=PHYSICS,
                mu_data_source=MU_SOURCE, z=Z_CM, mas=1.0)
    k, n = s.get_spectrum(edges=False, flu=True, diff=False)  # photons/cm^2/bin at z, per mAs
    out = np.zeros_like(CENTRES)
    idx = np.rint((k - 0.25) / DK).astype(int)
    if not np.allclose(CENTRES[idx], k, atol=1e-9):
        raise RuntimeError(f"SpekPy bin centres differ from the 0.5 keV grid for {target} {kvp}")
    out[idx] = n / 100.0  # per cm^2 -> per mm^2
    return out


def main():
    outdir = os.path.join(tc.DATA, "spectra")
    for t in TARGETS:
        cols = [CENTRES]
        for kvp in KVPS:
            cols.append(spectrum(t, kvp))
        data = np.array(cols).T
        hdr = [
            f"tomolab unfiltered x-ray tube spectra: target {t}",
            f"model: SpekPy {sp.__version__ if hasattr(sp, '__version__') else ''} "
            f"(Poludniowski et al., Med Phys 48:3630 (2021); Mo/Rh target data per the SpekPy "
            f"v2.0.13 release notes), physics='{PHYSICS}', mu_data_source='{MU_SOURCE}', "
            f"reflection target, anode angle th={ANODE_ANGLE_DEG:g} deg, dk={DK} keV, "
            "brem+characteristic, central axis (x=y=0)",
            "filtration: NONE (no tube window, no added filter, no air); apply Be window, filter, paddle "
            "and air in code",
            f"units: photons per mm^2 per mAs per 0.5 keV bin at {Z_CM * 10:g} mm from the focal spot "
            "(SpekPy photons/cm^2/mAs/bin at z=100 cm divided by 100)",
            "bins: edges at multiples of 0.5 keV; energy_bin_centre_kev = 0.25, 0.75, ...; SpekPy's "
            "dk=0.5 bins coincide with these (no re-binning); zero below 1 keV and above the kVp",
            f"columns: energy_bin_centre_kev, then kvp{KVPS[0]}..kvp{KVPS[-1]} (integer kVp, constant potential)",
            f"generated_by: python3 scripts/make_spectra.py (part of python3 scripts/make_tables.py); "
            f"packages: {tc.pkg_versions()}",
            "see data/spectra/README.md for the HVL comparison with published beams",
        ]
        rows = [[f"{r[0]:.2f}"] + [f"{v:.6e}" for v in r[1:]] for r in data]
        path = os.path.join(outdir, f"{t}_unfiltered.csv")
        tc.write_csv(path, hdr, ["energy_bin_centre_kev"] + [f"kvp{k}" for k in KVPS], rows)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
