//! Phantom generation speed: the target case (a 50 mm breast at 0.1 mm voxels, about
//! 0.84 G u8 labels, must generate in well under a minute on 2 cores) and a small case.
//!
//! Run with `cargo bench --bench phantom`; `RAYON_NUM_THREADS=2` pins the thread count.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tomolab_phantom::{BreastParams, CalcMaterial, LesionSpec, Phantom};

fn breast(voxel_mm: f64) -> BreastParams {
    BreastParams {
        thickness_mm: 50.0,
        glandular_fraction: 0.2,
        voxel_mm,
        seed: 7,
        lesions: vec![
            LesionSpec::spiculated(10.0, 16, 8.0),
            LesionSpec::mass([5.0, 4.0, 3.0]),
            LesionSpec::calcifications(20, 0.1, 0.5, 8.0, CalcMaterial::Hydroxyapatite),
        ],
        ..BreastParams::default()
    }
}

fn small(c: &mut Criterion) {
    let p = breast(0.5);
    c.bench_function("breast_50mm_0.5mm_prepare_and_generate", |b| {
        b.iter(|| black_box(Phantom::breast(&p).and_then(|ph| ph.generate()).map(|g| g.volume.labels.len())))
    });
}

fn full(c: &mut Criterion) {
    let p = breast(0.1);
    c.bench_function("breast_50mm_0.1mm_prepare_and_generate", |b| {
        b.iter(|| black_box(Phantom::breast(&p).and_then(|ph| ph.generate()).map(|g| g.volume.labels.len())))
    });
    let ph = Phantom::breast(&p).ok();
    c.bench_function("breast_50mm_0.1mm_stream_16MB_slabs", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            if let Some(ph) = &ph {
                let _ = ph.stream(10, |_, s| {
                    sum += s.len() as u64;
                    Ok(())
                });
            }
            black_box(sum)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = small, full
}
criterion_main!(benches);
