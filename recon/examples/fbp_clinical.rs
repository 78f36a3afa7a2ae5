//! One clinical-size FBP (25 views of 2816 x 3584 at 85 um, 50 slices of 1 mm): wall time, CPU time and
//! peak resident memory (VmHWM). `cargo run --release -p tomolab-recon --example fbp_clinical`

use std::time::Instant;

use tomolab_hal::{ArcGeometry, DetectorGeometry, DetectorMaterial, DetectorMotion};
use tomolab_recon::{FbpOptions, Projections, VolumeGeometry, VolumeOptions, fbp};

fn proc_status(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok().map(|kib| kib / 1024.0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let views = 25;
    let det = DetectorGeometry {
        cols: 2816,
        rows: 3584,
        pitch_u_mm: 0.085,
        pitch_v_mm: 0.085,
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
    let vol = VolumeGeometry::for_tomosynthesis(&det, &poses, Some(50.0), &VolumeOptions::default())?;
    let data: Vec<f32> = (0..views * det.pixel_count()).map(|i| 1.0 + (i % 977) as f32 * 1e-3).collect();
    let projections = Projections { detector: det, poses, data };
    println!(
        "volume {}x{}x{} ({:.2} G voxels); RSS before FBP {:.0} MiB",
        vol.nx,
        vol.ny,
        vol.nz,
        vol.len() as f64 / 1e9,
        proc_status("VmRSS:").unwrap_or(f64::NAN)
    );
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let recon = fbp(&projections, &vol, &FbpOptions::default())?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "FBP: wall {wall:.1} s, CPU {cpu:.1} s on {} threads ({:.2} GUPS per CPU-second); peak RSS (VmHWM) {:.0} MiB; centre {}",
        rayon::current_num_threads(),
        (vol.len() * views) as f64 / cpu / 1e9,
        proc_status("VmHWM:").unwrap_or(f64::NAN),
        recon.at(vol.nx / 2, vol.ny / 2, vol.nz / 2)
    );
    if std::env::args().any(|a| a == "--parts") {
        drop(recon);
        let projector = tomolab_recon::Projector::new(vol, det, &projections.poses, tomolab_recon::KernelPath::Auto)?;
        let all: Vec<usize> = (0..views).collect();
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let mut out = vec![0.0f32; vol.len()];
        println!("allocate volume: wall {:.1} s, CPU {:.1} s", t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        for _ in 0..2 {
            let (t0, c0) = (Instant::now(), cpu_seconds());
            projector.back(&projections.data, &all, &mut out)?;
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
            println!(
                "backprojection alone: wall {wall:.1} s, CPU {cpu:.1} s ({:.2} GUPS per CPU-second)",
                (vol.len() * views) as f64 / cpu / 1e9
            );
        }
    }
    Ok(())
}
