//! Runs TG-195 Case 3 and prints ours against the four reference codes.
//! `cargo run --release -p tomolab-simulator --example tg195 -- [histories] [voxel_mm]`
use tomolab_simulator::mc::{McConfig, tg195};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let histories: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let voxel: f64 = args.next().map_or(Ok(0.5), |a| a.parse())?;
    let phantom = tg195::Phantom::new(voxel)?;
    let exact = std::f64::consts::PI * 98.0 * 98.0 / 2.0 * 46.0;
    println!(
        "tissue volume {:.1} mm3 vs {:.1} ({:+.3} %)",
        phantom.tissue_volume_mm3(),
        exact,
        100.0 * (phantom.tissue_volume_mm3() / exact - 1.0)
    );
    for beam in [tg195::Beam::Mono16_8, tg195::Beam::MoMo30] {
        for mode in [tg195::Mode::Radiography, tg195::Mode::Tomosynthesis] {
            let t = std::time::Instant::now();
            let rows =
                tg195::compare(&phantom, mode, beam, &McConfig { histories, batches: 64, seed: 7, stream_offset: 0 })?;
            let dt = t.elapsed().as_secs_f64();
            println!("{beam:?} {mode:?}: {:.0} photons/s", histories as f64 / dt);
            for r in rows {
                println!(
                    "  {:10} ours {:9.3} +- {:6.3}  ref {:9.3}  {:+6.2} %  ({:.2} sigma)",
                    r.volume,
                    r.ours_ev.mean,
                    r.ours_ev.std_error,
                    r.reference.mean_ev,
                    r.difference_pct,
                    (r.ours_ev.mean - r.reference.mean_ev) / r.ours_ev.std_error
                );
            }
        }
    }
    Ok(())
}
