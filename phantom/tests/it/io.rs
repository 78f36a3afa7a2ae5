//! Files written by `write_outputs` open again and agree with the in-memory volume.

use tomolab_phantom::io::{read_metaimage, write_outputs};
use tomolab_phantom::{BeadParams, BreastParams, GroundTruth, LesionSpec, MaterialTable, Phantom, SlabParams};

#[test]
fn outputs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = BreastParams {
        voxel_mm: 0.5,
        seed: 3,
        lesions: vec![LesionSpec::spiculated(6.0, 6, 3.0)],
        ..BreastParams::default()
    };
    let ph = Phantom::breast(&p).unwrap();
    for compress in [false, true] {
        let out = dir.path().join(if compress { "z" } else { "raw" });
        let written = write_outputs(&ph, &out, compress).unwrap();
        for f in &written.files {
            assert!(f.exists(), "{f:?} missing");
        }
        let vol = read_metaimage(&out.join("phantom.mhd")).unwrap();
        let g = ph.generate().unwrap();
        assert_eq!(vol.grid(), g.volume.grid());
        assert!(vol.labels == g.volume.labels);
        let truth: GroundTruth =
            serde_json::from_str(&std::fs::read_to_string(out.join("ground_truth.json")).unwrap()).unwrap();
        assert_eq!(truth, g.truth);
        let table: MaterialTable =
            serde_json::from_str(&std::fs::read_to_string(out.join("materials.json")).unwrap()).unwrap();
        assert_eq!(&table, ph.materials());
        for png in ["slice_central.png", "projection_summed.png"] {
            let img = image::open(out.join(png)).unwrap();
            assert_eq!((img.width() as usize, img.height() as usize), (vol.grid.nx, vol.grid.ny));
        }
    }
    let header = std::fs::read_to_string(dir.path().join("raw/phantom.mhd")).unwrap();
    assert!(header.contains("ElementType = MET_UCHAR") && header.contains("ElementDataFile = phantom.raw"));
}

#[test]
fn qa_outputs_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let slab = Phantom::slab(&SlabParams { voxel_mm: 1.0, ..SlabParams::default() }).unwrap();
    write_outputs(&slab, dir.path(), false).unwrap();
    let beads = Phantom::beads(&BeadParams {
        slab: SlabParams { voxel_mm: 0.5, ..SlabParams::default() },
        ..BeadParams::default()
    })
    .unwrap();
    let w = write_outputs(&beads, &dir.path().join("beads"), false).unwrap();
    assert_eq!(w.truth.objects.len(), 15);
}
