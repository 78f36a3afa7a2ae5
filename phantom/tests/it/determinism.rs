//! Same parameters and seed give the same bytes on 1 or 2 threads, in memory or streamed.

use tomolab_phantom::{AccreditationParams, BreastParams, CalcMaterial, LesionSpec, Phantom};

fn params() -> BreastParams {
    BreastParams {
        voxel_mm: 0.4,
        seed: 99,
        glandular_fraction: 0.3,
        lesions: vec![
            LesionSpec::spiculated(8.0, 10, 5.0),
            LesionSpec::calcifications(20, 0.1, 0.4, 6.0, CalcMaterial::Hydroxyapatite),
            LesionSpec::mass([3.0, 4.0, 5.0]),
        ],
        ..BreastParams::default()
    }
}

fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool").install(f)
}

#[test]
fn breast_is_byte_identical_on_one_and_two_threads() {
    let one = on_threads(1, || Phantom::breast(&params()).unwrap().generate().unwrap());
    let two = on_threads(2, || Phantom::breast(&params()).unwrap().generate().unwrap());
    assert!(one.volume.labels == two.volume.labels, "volumes differ");
    assert_eq!(one.truth, two.truth);
    // Streaming in odd-sized slabs gives the same bytes.
    let ph = on_threads(2, || Phantom::breast(&params()).unwrap());
    let mut streamed = Vec::new();
    let truth = on_threads(2, || {
        ph.stream(7, |_, s| {
            streamed.extend_from_slice(s);
            Ok(())
        })
    })
    .unwrap();
    assert!(streamed == one.volume.labels, "streamed volume differs");
    assert_eq!(truth, one.truth);
}

#[test]
fn accreditation_is_byte_identical_on_one_and_two_threads() {
    let p = AccreditationParams { voxel_mm: 0.3, ..AccreditationParams::default() };
    let one = on_threads(1, || Phantom::accreditation(&p).unwrap().generate().unwrap());
    let two = on_threads(2, || Phantom::accreditation(&p).unwrap().generate().unwrap());
    assert!(one.volume.labels == two.volume.labels);
}

#[test]
fn different_seeds_differ() {
    let a = Phantom::breast(&BreastParams { seed: 1, ..params() }).unwrap().generate().unwrap();
    let b = Phantom::breast(&BreastParams { seed: 2, ..params() }).unwrap().generate().unwrap();
    assert!(a.volume.labels != b.volume.labels);
}
