//! Reconstruction benchmarks.
//!
//! - `backprojection/{fast,general}`: the matched backprojector `A^T` on the RTK comparison geometry
//!   (25 views over 50 deg, SID 650 mm, axis 50 mm, 512 x 640 detector at 0.34 mm, volume 512 x 640 x 50).
//!   Throughput is in voxel-updates (elements) per second: divide by 1e9 for GUPS. The same geometry is
//!   measured for RTK by `benches/rtk/compare_rtk.py`.
//! - `fbp_clinical/fbp`: full FBP at clinical size (25 views of 2816 x 3584 at 85 um, 50 slices of 1 mm),
//!   then the process's peak resident memory (VmHWM) is printed.
//!
//! Run: `cargo bench --bench recon` (or `-- backprojection` / `-- fbp_clinical` for one group).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, ViewPose};
use tomolab_recon::{
    FbpOptions, KernelPath, Projections, ProjectorPair, VolumeOptions, VoxelGrid, VoxelProjector, fbp,
};

fn poses(detector: DetectorGeometry, views: usize) -> Vec<ViewPose> {
    let arc = ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector,
        detector_motion: DetectorMotion::Stationary,
    };
    (0..views).map(|k| arc.pose_at(-25.0 + 50.0 * k as f64 / (views as f64 - 1.0))).collect()
}

fn detector(cols: usize, rows: usize, pitch_mm: f64) -> DetectorGeometry {
    DetectorGeometry {
        cols,
        rows,
        pitch_u_mm: pitch_mm,
        pitch_v_mm: pitch_mm,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    }
}

/// A smooth, non-trivial projection pattern (the content does not change the cost).
fn pattern(views: usize, det: &DetectorGeometry) -> Vec<f32> {
    let mut data = Vec::with_capacity(views * det.pixel_count());
    for k in 0..views {
        for r in 0..det.rows {
            for c in 0..det.cols {
                data.push(1.0 + 0.1 * ((c + 3 * k) as f32 * 0.01).sin() * (r as f32 * 0.013).cos());
            }
        }
    }
    data
}

/// Peak resident set size of this process, from /proc/self/status (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn backprojection(c: &mut Criterion) {
    let views = 25;
    let det = detector(512, 640, 0.34);
    let poses = poses(det, views);
    // 512 x 640 x 50 voxels over the lower 50 mm, in-plane voxel = pitch at the mid plane (25 mm).
    let voxel = 0.34 * 625.0 / 650.0;
    let vol =
        VoxelGrid::from_first_centre([512, 640, 50], [voxel, voxel, 1.0], [-255.5 * voxel, 0.5 * voxel + 2.0, 0.5]);
    let data = pattern(views, &det);
    let all: Vec<usize> = (0..views).collect();
    let mut out = vec![0.0f32; vol.len()];
    let mut group = c.benchmark_group("backprojection");
    group.throughput(Throughput::Elements((vol.len() * views) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, path) in [("fast", KernelPath::Fast), ("general", KernelPath::General)] {
        let projector = match VoxelProjector::new(vol, det, &poses, path) {
            Ok(p) => p,
            Err(e) => panic!("bench geometry rejected: {e}"),
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                if let Err(e) = projector.back(black_box(&data), &all, &mut out) {
                    panic!("{e}");
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn fbp_clinical(c: &mut Criterion) {
    let views = 25;
    let det = detector(2816, 3584, 0.085);
    let poses = poses(det, views);
    let vol = match tomolab_recon::tomosynthesis_grid(&det, &poses, Some(50.0), &VolumeOptions::default()) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let projections = Projections { detector: det, poses, data: pattern(views, &det) };
    let mut group = c.benchmark_group("fbp_clinical");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements((vol.len() * views) as u64));
    let mut ran = false;
    group.bench_function("fbp", |b| {
        ran = true;
        b.iter(|| match fbp(black_box(&projections), &vol, &FbpOptions::default()) {
            Ok(v) => black_box(v),
            Err(e) => panic!("{e}"),
        })
    });
    group.finish();
    if ran {
        eprintln!(
            "fbp_clinical: volume {}x{}x{} ({:.2} G voxels), peak RSS (VmHWM) {:.0} MiB",
            vol.nx,
            vol.ny,
            vol.nz,
            vol.len() as f64 / 1e9,
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
}

criterion_group!(benches, backprojection, fbp_clinical);
criterion_main!(benches);
