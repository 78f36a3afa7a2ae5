//! Monte Carlo dose throughput. Run with `cargo bench --bench dose`.
//!
//! - `photons_per_core`: TG-195 Case 3 (tomosynthesis, 30 kVp Mo/Mo) on one thread; criterion's elements/s is
//!   photons per second per core.
//! - `default_exam_to_1pct`: the Monte Carlo MGD of every view of the default exam (wide-angle, 25 views, the
//!   default 50 mm breast at 0.25 mm, W/Rh 28 kV) with the photons per view that bring the exam total to 1 %
//!   standard error (found once before timing, and printed).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tomolab::exam::{ExamConfig, Resolution};
use tomolab_hal::technique::{Filter, FilterMaterial, Technique};
use tomolab_hal::{FocalSpot, Kilovolts, MilliampereSeconds, Milliamperes, PresetName, ScanPreset, Target};
use tomolab_phantom::{BreastParams, Phantom};
use tomolab_simulator::FilterLayer;
use tomolab_simulator::dose::{PhantomDose, PhantomDoseConfig};
use tomolab_simulator::mc::{self, McConfig, tg195};

fn photons_per_core(c: &mut Criterion) {
    let phantom = tg195::Phantom::new(0.5).expect("phantom");
    let scene = tg195::scene(&phantom).expect("scene");
    let source = tg195::source(tg195::Mode::Tomosynthesis, tg195::Beam::MoMo30).expect("source");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let n = 200_000;
    let mut g = c.benchmark_group("mc");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("photons_per_core", |b| {
        b.iter(|| {
            pool.install(|| mc::run(&scene, &source, &McConfig { histories: n, batches: 8, seed: 1, stream_offset: 0 }))
        })
    });
    g.finish();
}

fn default_exam_to_1pct(c: &mut Criterion) {
    let config = ExamConfig::defaults(PresetName::WideAngle, Resolution::Fast);
    let params = BreastParams { seed: config.seed, ..config.phantom.clone() };
    let phantom = Phantom::breast(&params).expect("phantom");
    let generated = phantom.generate().expect("generate");
    let preset = ScanPreset::builtin(PresetName::WideAngle);
    let fixed = [FilterLayer::named("beryllium", 1.0).expect("Be"), FilterLayer::named("pmma", 2.5).expect("pmma")];
    let dose = PhantomDose {
        volume: &generated.volume,
        materials: phantom.materials(),
        arc: &preset.geometry,
        fixed_layers: &fixed,
    };
    let technique = Technique {
        kvp: Kilovolts::new(28.0).expect("kV"),
        tube_current: Milliamperes::new(100.0).expect("mA"),
        mas_per_view: MilliampereSeconds::new(4.66).expect("mAs"),
        target: Target::W,
        filter: Filter { material: FilterMaterial::Rh, thickness_mm: 0.05 },
        focal_spot: FocalSpot::Large,
    };
    let angles = preset.sampling.angles_deg();
    let exam = |histories: u64| -> (f64, f64) {
        let cfg = PhantomDoseConfig { histories_per_view: histories, batches: 16, seed: 1 };
        let requests: Vec<_> = angles.iter().enumerate().map(|(k, &a)| (k as u64, a, technique)).collect();
        let views: Vec<_> = dose.views(&requests, &cfg).expect("views").into_iter().map(|v| v.mgd_per_mas).collect();
        let total: f64 = views.iter().map(|e| e.mean).sum();
        (total, views.iter().map(|e| e.std_error.powi(2)).sum::<f64>().sqrt())
    };
    // Relative error falls as 1/sqrt(N): size N from a pilot run.
    let pilot = 4_000;
    let (m, e) = exam(pilot);
    let needed = ((pilot as f64) * (e / m / 0.01).powi(2)).ceil().max(1_000.0) as u64;
    let (m2, e2) = exam(needed);
    println!("default exam: {needed} photons per view give MGD {:.4} mGy/mAs +- {:.2} %", m2, 100.0 * e2 / m2);
    let mut g = c.benchmark_group("mc");
    g.sample_size(10);
    g.bench_function("default_exam_to_1pct", |b| b.iter(|| exam(needed)));
    g.finish();
}

criterion_group!(benches, photons_per_core, default_exam_to_1pct);
criterion_main!(benches);
