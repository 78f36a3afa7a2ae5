"""Write data/attenuation/carcinoma.csv and data/scattering/carcinoma.csv: infiltrating ductal carcinoma.

Johns & Yaffe, Phys Med Biol 32:675 (1987) measured the linear attenuation of fat, fibroglandular tissue and
infiltrating duct carcinoma (IDC) at 18-110 keV (data/reference/johns_yaffe_1987.csv). Their absolute values and
our Hammerstein-composition glandular table differ by a few per cent (sample spread, composition), but what
makes a mass visible is its contrast against the tissue around it, so the carcinoma table is our glandular
table scaled, energy by energy, by J&Y's measured ratio r(E) = mu_IDC(E) / mu_fibroglandular(E):

  r(E) linear in ln E between J&Y's energies; below 18 keV held at r(18 keV) = 1.0554 (J&Y did not measure
  lower); 50-60 keV interpolated toward r(80 keV).

Every column (photoelectric, Compton, Rayleigh, total, mu_en/rho) is scaled by r(E), and the density is the
glandular 1.04 g/cm3, so mu_carcinoma(E) = r(E) * mu_glandular(E) exactly. The angular scattering functions
(per atom) are the glandular ones: the composition is not known beyond J&Y's attenuation, and the MC takes its
interaction probabilities from the attenuation table.

Needs only the Python standard library and the committed glandular tables.
Run: python3 scripts/make_carcinoma.py
"""

import csv
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")


def johns_yaffe():
    path = os.path.join(DATA, "reference", "johns_yaffe_1987.csv")
    with open(path) as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    head, body = rows[0], rows[1:]
    assert head == ["energy_kev", "fat_per_cm", "fibroglandular_per_cm", "idc_per_cm"], head
    return [(float(e), float(fg), float(idc)) for e, _, fg, idc in body]


def ratio(e_kev, jy):
    """mu_IDC / mu_fibroglandular at e_kev (linear in ln E, held constant below the first point)."""
    pts = [(math.log(e), idc / fg) for e, fg, idc in jy]
    x = math.log(e_kev)
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, r0), (x1, r1) in zip(pts, pts[1:]):
        if x <= x1:
            return r0 + (r1 - r0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def split(path):
    with open(path) as f:
        lines = f.read().splitlines()
    header = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if line and not line.startswith("#")]
    return header, body


def provenance(jy, kind):
    ratios = ", ".join(f"{e:g} keV {idc / fg:.4f}" for e, fg, idc in jy)
    return [
        f"# tomolab {kind} table: carcinoma",
        "# density_g_cm3=1.04",
        "# composition_weight_fraction=H:0.102000 C:0.184000 N:0.032000 O:0.677000 P:0.001250 S:0.001250 "
        "K:0.001250 Ca:0.001250",
        "# material: infiltrating ductal carcinoma (mass lesion tissue)",
        "# attenuation_source: Johns PC & Yaffe MJ, Phys Med Biol 32:675-695 (1987), measured linear attenuation "
        "of IDC and fibroglandular tissue (data/reference/johns_yaffe_1987.csv)",
        "# derivation: the glandular table (Hammerstein et al. 1979 composition, 1.04 g/cm3) with every coefficient "
        "multiplied by r(E) = mu_IDC/mu_fibroglandular of J&Y, linear in ln E between their energies, held at "
        "r(18 keV) below 18 keV; so mu_carcinoma = r(E) mu_glandular and the density stays 1.04 g/cm3",
        f"# J&Y ratio r(E): {ratios}",
        "# composition_weight_fraction is the glandular one (the angular scattering functions are glandular's; "
        "only the attenuation is J&Y's)",
        "# generated_by: python3 scripts/make_carcinoma.py (from data/attenuation/glandular.csv and "
        "data/scattering/glandular.csv)",
    ]


def main():
    jy = johns_yaffe()
    header, body = split(os.path.join(DATA, "attenuation", "glandular.csv"))
    keep = [h for h in header if h.startswith(("# columns:", "# grid:", "# edges:", "# cross sections:",
                                               "# mu_en/rho:"))]
    out = provenance(jy, "attenuation") + [h.replace("# ", "# glandular_", 1) for h in keep]
    out.append(body[0])
    for line in body[1:]:
        cells = line.split(",")
        r = ratio(float(cells[0]), jy)
        out.append(",".join([cells[0]] + [f"{float(c) * r:.6e}" for c in cells[1:]]))
    path = os.path.join(DATA, "attenuation", "carcinoma.csv")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {path} ({len(body) - 1} rows)")

    header, body = split(os.path.join(DATA, "scattering", "glandular.csv"))
    keep = [h for h in header if not h.startswith(("# tomolab", "# density", "# composition", "# generated_by"))]
    path = os.path.join(DATA, "scattering", "carcinoma.csv")
    with open(path, "w") as f:
        f.write("\n".join(provenance(jy, "scattering") + keep + body) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
