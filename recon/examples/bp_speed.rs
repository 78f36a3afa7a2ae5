//! Quick backprojection speed probe on the RTK comparison geometry, reporting wall and CPU time
//! (the CPU figure is meaningful on a loaded machine). `cargo run --release -p tomolab-recon --example bp_speed`

use std::time::Instant;

use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion};
use tomolab_recon::{KernelPath, Projector, VolumeGeometry};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let views = 25;
    let det = DetectorGeometry {
        cols: 512,
        rows: 640,
        pitch_u_mm: 0.34,
        pitch_v_mm: 0.34,
        material: DetectorMaterial::ASe,
        layer_thickness_mm: 0.2,
    };
    let arc = ArcGeometry {
        source_to_detector_mm: 650.0,
        rotation_axis_height_mm: 50.0,
        detector: det,
        detector_motion: DetectorMotion::Stationary,
    };
    let poses: Vec<_> = (0..views).map(|k| arc.pose_at(-25.0 + 50.0 * k as f64 / (views as f64 - 1.0))).collect();
    let voxel = 0.34 * 625.0 / 650.0;
    let vol = VolumeGeometry {
        nx: 512,
        ny: 640,
        nz: 50,
        voxel_mm: [voxel, voxel, 1.0],
        origin_mm: [-255.5 * voxel, 0.5 * voxel + 2.0, 0.5],
    };
    let data: Vec<f32> = (0..views * det.pixel_count()).map(|i| 1.0 + (i % 977) as f32 * 1e-3).collect();
    let all: Vec<usize> = (0..views).collect();
    let mut out = vec![0.0f32; vol.len()];
    let which = std::env::args().nth(1).unwrap_or_else(|| "fast".into());
    let path = if which == "general" { KernelPath::General } else { KernelPath::Fast };
    let p = Projector::new(vol, det, &poses, path)?;
    p.back(&data, &all, &mut out)?;
    let updates = (vol.len() * views) as f64;
    for _ in 0..3 {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        p.back(&data, &all, &mut out)?;
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        println!(
            "{which}: wall {wall:.3} s ({:.3} GUPS), cpu {cpu:.2} s ({:.3} GUPS per CPU-second), threads {}",
            updates / wall / 1e9,
            updates / cpu / 1e9,
            rayon::current_num_threads()
        );
    }
    Ok(())
}
