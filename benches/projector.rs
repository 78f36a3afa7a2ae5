//! RayTracer throughput: rays and voxel steps per second, at a default size and at clinical size.
//!
//! Run with `cargo bench --bench projector`. Criterion's "elements/s" is voxel steps (ray-voxel
//! intersections) per second; rays per second and steps per ray are printed before each group.
//!
//! - default: a 60 x 40 x 45 mm slab-plus-spheres phantom of 0.5 mm voxels, a 400 x 300 detector of 0.2 mm
//!   pixels, one 15 deg view of the wide-angle geometry, W/Rh 28 kVp.
//! - clinical: 85 um pixels over the footprint of a 150 x 90 x 45 mm semi-elliptical breast of 0.1 mm
//!   voxels (about 0.6 G voxels, built here as a synthetic slab plus spheres), sample size 10.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion, Target};
use tomolab_simulator::{FilterLayer, MaterialMap, RayTracer, RayTracerConfig, Spectrum, VolumeView};

/// A semi-elliptical slab of adipose tissue (label 1) with glandular spheres (2) and calcifications (3).
struct Synthetic {
    nx: usize,
    ny: usize,
    nz: usize,
    voxel_mm: f64,
    origin_mm: [f64; 3],
    labels: Vec<u8>,
}

fn synthetic(width_mm: f64, depth_mm: f64, thickness_mm: f64, voxel_mm: f64, seed: u64) -> Synthetic {
    let (nx, ny, nz) = (
        (width_mm / voxel_mm).round() as usize,
        (depth_mm / voxel_mm).round() as usize,
        (thickness_mm / voxel_mm).round() as usize,
    );
    let origin_mm = [-width_mm / 2.0, 0.0, 20.0];
    let mut labels = vec![0u8; nx * ny * nz];
    let (a, b) = (width_mm / 2.0, depth_mm);
    for j in 0..ny {
        let y = (j as f64 + 0.5) * voxel_mm;
        for i in 0..nx {
            let x = origin_mm[0] + (i as f64 + 0.5) * voxel_mm;
            if (x / a).powi(2) + (y / b).powi(2) <= 1.0 {
                for k in 0..nz {
                    labels[(k * ny + j) * nx + i] = 1;
                }
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spheres = (width_mm * depth_mm / 40.0) as usize;
    for s in 0..spheres {
        let calc = s % 10 == 0;
        let r = if calc { rng.random_range(0.1..0.4) } else { rng.random_range(1.5..6.0) };
        let c = [
            rng.random_range(-a * 0.8..a * 0.8),
            rng.random_range(0.0..b * 0.8),
            20.0 + rng.random_range(r..thickness_mm - r),
        ];
        let lo = |ax: usize| (((c[ax] - r - origin_mm[ax]) / voxel_mm).floor().max(0.0)) as usize;
        let hi = |ax: usize, n: usize| ((((c[ax] + r - origin_mm[ax]) / voxel_mm).ceil()) as usize).min(n);
        for k in lo(2)..hi(2, nz) {
            for j in lo(1)..hi(1, ny) {
                for i in lo(0)..hi(0, nx) {
                    let p = [
                        origin_mm[0] + (i as f64 + 0.5) * voxel_mm,
                        origin_mm[1] + (j as f64 + 0.5) * voxel_mm,
                        origin_mm[2] + (k as f64 + 0.5) * voxel_mm,
                    ];
                    let d2: f64 = (0..3).map(|ax| (p[ax] - c[ax]).powi(2)).sum();
                    let idx = (k * ny + j) * nx + i;
                    if d2 <= r * r && labels[idx] != 0 {
                        labels[idx] = if calc { 3 } else { 2 };
                    }
                }
            }
        }
    }
    Synthetic { nx, ny, nz, voxel_mm, origin_mm, labels }
}

fn bench_case(c: &mut Criterion, name: &str, phantom: &Synthetic, detector: DetectorGeometry, samples: usize) {
    let view = VolumeView {
        grid: tomolab_hal::VoxelGrid::cubic([phantom.nx, phantom.ny, phantom.nz], phantom.voxel_mm, phantom.origin_mm),
        labels: &phantom.labels,
    };
    let map =
        MaterialMap::from_names([(1, "adipose"), (2, "glandular"), (3, "hydroxyapatite")]).expect("materials exist");
    let filters = [FilterLayer::named("Be", 1.0).expect("Be"), FilterLayer::named("Rh", 0.05).expect("Rh")];
    let spectrum = Spectrum::new(Target::W, 28.0, &filters, 1000.0).expect("W/Rh 28 kVp");
    let arc = ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector,
        detector_motion: DetectorMotion::Stationary,
    };
    let projector =
        RayTracer::new(view, map, &spectrum, &detector, RayTracerConfig::default()).expect("valid projector");
    let pose = [arc.pose_at(15.0)];
    let start = std::time::Instant::now();
    let probe = projector.project(&pose, 1.0).expect("projects");
    let secs = start.elapsed().as_secs_f64();
    let st = probe.stats;
    println!(
        "{name}: {} voxels, {}x{} pixels, {} energy groups; {} rays, {:.0} steps/ray; first run {:.2} s = {:.3e} \
         rays/s, {:.3e} steps/s",
        phantom.labels.len(),
        detector.cols,
        detector.rows,
        projector.energy_groups(),
        st.rays,
        st.voxel_steps as f64 / st.rays as f64,
        secs,
        st.rays as f64 / secs,
        st.voxel_steps as f64 / secs
    );
    let mut group = c.benchmark_group(name);
    group.sample_size(samples);
    group.throughput(Throughput::Elements(st.voxel_steps));
    group.bench_function("project (elements = voxel steps)", |b| b.iter(|| projector.project(&pose, 1.0)));
    group.finish();
}

fn default_size(c: &mut Criterion) {
    let phantom = synthetic(60.0, 40.0, 45.0, 0.5, 1);
    let detector = DetectorGeometry {
        cols: 400,
        rows: 300,
        pitch_u_mm: 0.2,
        pitch_v_mm: 0.2,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    };
    bench_case(c, "projector_default", &phantom, detector, 10);
}

fn clinical_size(c: &mut Criterion) {
    let phantom = synthetic(150.0, 90.0, 45.0, 0.1, 2);
    // 85 um pixels over the breast's shadow: 170 x 110 mm.
    let detector = DetectorGeometry {
        cols: 2000,
        rows: 1294,
        pitch_u_mm: 0.085,
        pitch_v_mm: 0.085,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    };
    bench_case(c, "projector_clinical", &phantom, detector, 10);
}

criterion_group!(benches, default_size, clinical_size);
criterion_main!(benches);
