#!/usr/bin/env python3
"""RTK side of the backprojection benchmark (issue 6).

Measures rtk.BackProjectionImageFilter (RTK's CPU voxel-based backprojector, bilinear interpolation on the
detector) on the geometry of `cargo bench --bench recon -- backprojection`:

  25 views over -25..+25 deg, source-to-detector 650 mm, rotation axis 50 mm above the stationary detector,
  detector 512 (u, along x) x 640 (v, along y) pixels at 0.34 mm, volume 512 x 640 x 50 voxels
  (in-plane 0.34 * 625/650 mm, 1 mm slices from z = 0.5 mm).

Each view is given to RTK as a free-form pose (source, detector position, row and column vectors), the same
four vectors tomolab uses, so the stationary detector is represented exactly.

Usage: pip install itk-rtk; python3 benches/rtk/compare_rtk.py [--repeats N] [--threads T] [--scale S]
Prints the time per backprojection and G voxel-updates per second (GUPS).
"""

import argparse
import math
import time

import itk
import numpy as np
from itk import RTK as rtk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="ITK threads (0 = ITK default)")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the problem for a quick check (e.g. 0.25)")
    args = ap.parse_args()
    if args.threads > 0:
        itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(args.threads)

    views = 25
    sid, axis = 650.0, 50.0
    cols, rows = int(512 * args.scale), int(640 * args.scale)
    pitch = 0.34 / args.scale
    nx, ny, nz = cols, rows, 50
    voxel = pitch * 625.0 / 650.0

    geometry = rtk.ThreeDCircularProjectionGeometry.New()
    r = sid - axis
    det_centre = [0.0, rows * pitch / 2.0, 0.0]
    for k in range(views):
        a = math.radians(-25.0 + 50.0 * k / (views - 1))
        source = [r * math.sin(a), 0.0, axis + r * math.cos(a)]
        geometry.AddProjection(
            itk.Point[itk.D, 3](source),
            itk.Point[itk.D, 3](det_centre),
            itk.Vector[itk.D, 3]([1.0, 0.0, 0.0]),
            itk.Vector[itk.D, 3]([0.0, 1.0, 0.0]),
        )

    ImageType = itk.Image[itk.F, 3]
    proj = np.ones((views, rows, cols), dtype=np.float32)
    proj *= (1.0 + 0.1 * np.sin(np.arange(cols) * 0.01))[None, None, :]
    projections = itk.image_from_array(proj)
    projections.SetSpacing([pitch, pitch, 1.0])
    projections.SetOrigin([-(cols - 1) / 2.0 * pitch, -(rows - 1) / 2.0 * pitch, 0.0])

    def fresh_volume():
        # The filter runs in place and takes over its input's buffer, so each run gets a new zero volume.
        volume = itk.image_from_array(np.zeros((nz, ny, nx), dtype=np.float32))
        volume.SetSpacing([voxel, voxel, 1.0])
        volume.SetOrigin([-(nx - 1) / 2.0 * voxel, 0.5 * voxel + 2.0, 0.5])
        return volume

    bp = rtk.BackProjectionImageFilter[ImageType, ImageType].New()
    bp.SetInput(1, projections)
    bp.SetGeometry(geometry)
    times, cpu_times = [], []
    for i in range(args.repeats + 1):
        bp.SetInput(0, fresh_volume())
        t0, c0 = time.perf_counter(), time.process_time()
        bp.Update()
        if i > 0:  # the first run is a warm-up (thread pool, page faults)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    out = itk.array_from_image(bp.GetOutput())
    best = min(times)
    updates = nx * ny * nz * views
    print(f"RTK BackProjectionImageFilter: volume {nx}x{ny}x{nz}, "
          f"{views} views of {cols}x{rows}; threads {itk.MultiThreaderBase.GetGlobalDefaultNumberOfThreads()}")
    print(f"times (s): {', '.join(f'{t:.3f}' for t in times)}; best {best:.3f} s")
    print(f"GUPS (G voxel-updates/s): {updates / best / 1e9:.3f}")
    # On a shared machine wall time depends on the load; CPU time is the fairer comparison.
    print(f"CPU time (s): {', '.join(f'{t:.3f}' for t in cpu_times)}; "
          f"GUPS per CPU-second: {updates / min(cpu_times) / 1e9:.3f}")
    print(f"check: output mean {float(out.mean()):.4f} (non-zero means the geometry hits the volume)")


if __name__ == "__main__":
    main()
