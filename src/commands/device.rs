//! `tomolab device`: the virtual device, serving a backend over the firmware bridge's protocols.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use tomolab::exam::{ExamConfig, Resolution, prepare_exam};
use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::device::server::{SerialEndpoint, ServeConfig, serve};
use tomolab_hal::mock::{MockConfig, MockUnit};

/// Arguments of `tomolab device`.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeviceCommand {
    /// Serve a virtual device (the physics simulator, or the in-memory mock) over serial, Modbus TCP and a
    /// frame port.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Serve the control link on this serial port.
    #[arg(long, value_name = "PATH", conflicts_with = "pty")]
    serial: Option<String>,
    /// Create a pseudo-terminal for the control link and print its path.
    #[arg(long)]
    pty: bool,
    /// Modbus TCP listen address (gantry and paddle). Modbus has no authentication: keep it on loopback.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5020")]
    modbus: SocketAddr,
    /// Also serve Modbus RTU framing over TCP here (for RTU clients behind a serial-to-Ethernet gateway).
    #[arg(long, value_name = "ADDR")]
    modbus_rtu_over_tcp: Option<SocketAddr>,
    /// Detector frame stream listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5021")]
    frames: SocketAddr,
    /// Allow listening on non-loopback addresses (anyone who can reach them can move the gantry).
    #[arg(long)]
    allow_remote: bool,
    /// What the device is: the physics simulator imaging the exam's phantom, or the in-memory mock.
    #[arg(long, value_enum, default_value = "sim")]
    backend: Backend,
    /// Exam configuration (phantom, resolution, faults) of the simulated unit, as for `tomolab exam`.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Seed of the simulated unit.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    /// The physics simulator (`tomolab exam`'s unit).
    Sim,
    /// The in-memory mock (flat frames, for protocol work).
    Mock,
}

/// Runs `tomolab device`.
pub fn run(args: &DeviceArgs) -> anyhow::Result<()> {
    match &args.command {
        DeviceCommand::Serve(a) => run_serve(a),
    }
}

fn run_serve(args: &ServeArgs) -> anyhow::Result<()> {
    let addrs = [
        ("--modbus", Some(args.modbus)),
        ("--modbus-rtu-over-tcp", args.modbus_rtu_over_tcp),
        ("--frames", Some(args.frames)),
    ];
    for (name, addr) in addrs.into_iter().filter_map(|(n, a)| a.map(|a| (n, a))) {
        if !addr.ip().is_loopback() && !args.allow_remote {
            bail!(
                "{name} {addr} is not a loopback address; Modbus and the frame stream have no authentication (pass --allow-remote to insist)"
            );
        }
    }
    let serial = match (&args.serial, args.pty) {
        (Some(path), _) => SerialEndpoint::Path(path.clone()),
        (None, true) => SerialEndpoint::Pty,
        (None, false) => SerialEndpoint::None,
    };
    let config = ServeConfig {
        serial,
        modbus: Some(args.modbus),
        modbus_rtu_over_tcp: args.modbus_rtu_over_tcp,
        frames: Some(args.frames),
        device: DeviceConfig { boot_nonce: boot_nonce(), ..DeviceConfig::default() },
    };
    let handle = match args.backend {
        Backend::Mock => serve(config, || MockUnit::new(MockConfig::default(), vec![]).devices()),
        Backend::Sim => {
            let mut exam = match &args.config {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    ExamConfig::from_toml(&text, None, None).with_context(|| format!("in {}", path.display()))?
                }
                None => ExamConfig::defaults(tomolab_hal::PresetName::WideAngle, Resolution::Fast),
            };
            if let Some(seed) = args.seed {
                exam.seed = seed;
            }
            let unit = prepare_exam(&exam, None).context("building the simulated unit")?.unit;
            serve(config, move || unit.devices())
        }
    }
    .context("starting the virtual device")?;
    let mut out = std::io::stdout().lock();
    if let Some(path) = &handle.pty_path {
        writeln!(out, "serial (pty): {path}")?;
    } else if let Some(path) = &args.serial {
        writeln!(out, "serial: {path}")?;
    }
    if let Some(a) = handle.modbus_addr {
        writeln!(out, "modbus: {a}")?;
    }
    if let Some(a) = handle.modbus_rtu_addr {
        writeln!(out, "modbus (RTU over TCP): {a}")?;
    }
    if let Some(a) = handle.frames_addr {
        writeln!(out, "frames: {a}")?;
    }
    writeln!(out, "backend: {:?}; serving until interrupted", args.backend)?;
    out.flush()?;
    drop(out);
    handle.wait();
    Ok(())
}

/// A fresh seed for the device's session ids and frame tokens, so two device processes (or one restarted)
/// never announce the same session: std's `RandomState` keys come from the operating system's RNG.
fn boot_nonce() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32
}
