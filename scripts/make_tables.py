"""Regenerate every physics table in data/ (run once, offline; outputs are committed).

    python3 -m pip install -r scripts/requirements.txt
    python3 scripts/make_tables.py

Steps: vendor the NIST element tables (only if data/reference/nist_xaamdi_elements.csv
is missing), attenuation tables, their verification (VERIFICATION.md and the oracle
CSVs), scattering tables, SpekPy spectra, and the HVL check (data/spectra/README.md).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check_hvl  # noqa: E402
import make_attenuation  # noqa: E402
import make_carcinoma  # noqa: E402
import make_scattering  # noqa: E402
import make_spectra  # noqa: E402
import vendor_nist_elements  # noqa: E402
import verify_attenuation  # noqa: E402


def main():
    t0 = time.time()
    for step in (vendor_nist_elements.main, make_attenuation.main, verify_attenuation.main,
                 make_scattering.main, make_carcinoma.main, make_spectra.main, check_hvl.main):
        print(f"== {step.__module__}")
        step()
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
