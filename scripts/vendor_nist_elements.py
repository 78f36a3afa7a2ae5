"""Copy the NIST XAAMDI (Hubbell & Seltzer) element tables we need into data/reference.

Source: the NIST Standard Reference Database 126 v1.4 element tables
(https://physics.nist.gov/PhysRefData/XrayMassCoef/ElemTab/zNN.html), as bundled
in the PyPI package xrayatten==0.1.1 (xrayatten/data/nist_local/coeff/<Sym>.txt,
each file checked against the SHA-256 in the package's manifest.json). NIST data
are a US-government work. Vendoring the ~20 small tables keeps the rest of the
pipeline independent of that package.

Run: python3 scripts/vendor_nist_elements.py   (make_tables.py calls it when the
output is missing; pass --force to rebuild).
"""

import hashlib
import json
import os
import sys
from importlib import resources

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tl_common as tc  # noqa: E402
import xraylib as xrl  # noqa: E402


def needed_elements() -> list[int]:
    zs = set()
    for m in tc.materials():
        zs.update(m.weights)
    for w in tc.NIST_COMPOUNDS.values():
        zs.update(w)
    return sorted(zs)


def main(force: bool = False):
    out = tc.NIST_ELEMENTS_CSV
    if os.path.exists(out) and not force:
        print(f"{out} exists (use --force to rebuild)")
        return
    import importlib.metadata as md

    base = resources.files("xrayatten").joinpath("data", "nist_local")
    manifest = json.loads(base.joinpath("manifest.json").read_text())
    rows = []
    for z in needed_elements():
        sym = xrl.AtomicNumberToSymbol(z)
        ent = manifest["elements"][sym]
        raw = base.joinpath(ent["file"]).read_bytes()
        if hashlib.sha256(raw).hexdigest() != ent["sha256"]:
            raise RuntimeError(f"sha256 mismatch for {sym}")
        for line in raw.decode().splitlines()[1:]:
            e, mu, muen = line.split()
            rows.append([str(z), sym, f"{float(e):.8f}", f"{float(mu):.4g}", f"{float(muen):.4g}"])
    hdr = [
        "NIST XAAMDI element tables: photon mass attenuation mu/rho and mass energy-absorption "
        "mu_en/rho, 1 keV - 20 MeV",
        "Hubbell JH, Seltzer SM (2004), Tables of X-Ray Mass Attenuation Coefficients and Mass "
        "Energy-Absorption Coefficients (version 1.4), NIST Standard Reference Database 126 "
        "(NISTIR 5632), https://physics.nist.gov/PhysRefData/XrayMassCoef/ElemTab/",
        f"copied from the snapshot bundled in PyPI package xrayatten=={md.version('xrayatten')} "
        f"(manifest: version {manifest['version']} of {manifest['version_date']}, snapshot accessed "
        f"{manifest['snapshot_accessed']}), each file verified against its manifest SHA-256",
        "absorption edges appear as two rows with the same energy (below-edge first)",
        "command: python3 scripts/vendor_nist_elements.py --force",
    ]
    tc.write_csv(out, hdr, ["z", "symbol", "energy_mev", "mu_over_rho_cm2_g",
                            "mu_en_over_rho_cm2_g"], rows)
    print(f"wrote {out} ({len(rows)} rows)")


if __name__ == "__main__":
    main(force="--force" in sys.argv)
