//! Helpers shared by the end-to-end tests: running the binary, and the small quick exam configuration.

use std::process::{Command, Output};

use tomolab::exam::{ExamConfig, Resolution, TechniqueConfig};
use tomolab_hal::PresetName;
use tomolab_hal::technique::{FilterMaterial, Target};

/// Runs the `tomolab` binary of this build with `args`.
pub fn tomolab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tomolab")).args(args).output().expect("run tomolab")
}

/// A small, quick wide-angle exam: `views` views, 0.3 mm pixels, 0.25 mm voxels, a 30 mm mostly fatty breast
/// without lesions, manual W/Rh 28 kV 2 mAs per view; noise and scatter as asked.
pub fn small_exam(views: usize, noise: bool) -> ExamConfig {
    let mut c = ExamConfig::defaults(PresetName::WideAngle, Resolution::Fast);
    c.geometry.views = Some(views);
    c.geometry.detector_pitch_mm = Some(0.3);
    c.phantom.thickness_mm = 30.0;
    c.phantom.chest_wall_width_mm = 100.0;
    c.phantom.nipple_distance_mm = 60.0;
    c.phantom.voxel_mm = 0.25;
    c.phantom.lesions = Vec::new();
    // Mostly fat, so a lesion adds the same attenuation wherever it displaces tissue and its projected
    // centre is not pulled toward the fatty side of the texture.
    c.phantom.glandular_fraction = 0.05;
    c.physics.noise = noise;
    c.physics.scatter = noise;
    c.technique = TechniqueConfig::Manual {
        target: Target::W,
        filter: FilterMaterial::Rh,
        filter_mm: 0.05,
        kvp: 28.0,
        mas_per_view: 2.0,
    };
    c
}
