//! Invalid parameters give errors that name the field.

use tomolab_phantom::{BeadParams, BreastParams, LesionSpec, Phantom, PhantomError, SlabParams};

fn field_of(e: PhantomError) -> String {
    match e {
        PhantomError::InvalidParameter { field, .. } => field,
        other => panic!("expected InvalidParameter, got {other}"),
    }
}

#[test]
fn negative_thickness_is_refused() {
    let e = Phantom::breast(&BreastParams { thickness_mm: -5.0, ..BreastParams::default() }).unwrap_err();
    assert!(e.to_string().contains("thickness_mm"), "{e}");
    assert_eq!(field_of(e), "thickness_mm");
    let e = Phantom::slab(&SlabParams { thickness_mm: -1.0, ..SlabParams::default() }).unwrap_err();
    assert_eq!(field_of(e), "thickness_mm");
}

#[test]
fn fraction_above_one_is_refused() {
    let e = Phantom::breast(&BreastParams { glandular_fraction: 1.2, ..BreastParams::default() }).unwrap_err();
    assert_eq!(field_of(e), "glandular_fraction");
    let e = Phantom::breast(&BreastParams { glandular_fraction: f64::NAN, ..BreastParams::default() }).unwrap_err();
    assert_eq!(field_of(e), "glandular_fraction");
}

#[test]
fn lesion_outside_the_breast_is_refused() {
    let p = BreastParams {
        voxel_mm: 0.5,
        lesions: vec![LesionSpec::mass([3.0; 3]).at([0.0, 150.0, 45.0])],
        ..BreastParams::default()
    };
    match Phantom::breast(&p).unwrap_err() {
        PhantomError::LesionOutsideBreast { index: 0, .. } => {}
        e => panic!("unexpected {e}"),
    }
    // Centre inside, but the lesion pokes through the skin at the top.
    let p = BreastParams {
        voxel_mm: 0.5,
        lesions: vec![LesionSpec::mass([5.0; 3]).at([0.0, 40.0, 68.0])],
        ..BreastParams::default()
    };
    let e = Phantom::breast(&p).unwrap_err();
    assert!(matches!(e, PhantomError::LesionOutsideBreast { .. }), "{e}");
    assert!(e.to_string().contains("outside the skin"), "{e}");
}

#[test]
fn bad_lesion_sizes_name_the_lesion_field() {
    let p = BreastParams {
        lesions: vec![LesionSpec::mass([3.0; 3]), LesionSpec::spiculated(25.0, 5, 3.0)],
        ..BreastParams::default()
    };
    assert_eq!(field_of(Phantom::breast(&p).unwrap_err()), "lesions[1].diameter_mm");
    let p = BreastParams {
        lesions: vec![LesionSpec::calcifications(5, 0.05, 0.3, 5.0, Default::default())],
        ..BreastParams::default()
    };
    assert_eq!(field_of(Phantom::breast(&p).unwrap_err()), "lesions[0].min_diameter_mm");
}

#[test]
fn bead_outside_the_slab_is_refused() {
    let p = BeadParams { heights_mm: vec![10.0, 50.0], ..BeadParams::default() };
    assert_eq!(field_of(Phantom::beads(&p).unwrap_err()), "heights_mm[1]");
}

#[test]
fn random_lesion_without_glandular_tissue_fails_cleanly() {
    let p = BreastParams {
        voxel_mm: 0.5,
        glandular_fraction: 0.0,
        lesions: vec![LesionSpec::mass([3.0; 3])],
        ..BreastParams::default()
    };
    assert!(matches!(Phantom::breast(&p).unwrap_err(), PhantomError::PlacementFailed { index: 0, .. }));
}
