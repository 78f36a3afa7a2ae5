//! Modbus faults on a real TCP transport (issue 14 item 8, the Modbus half): the threaded virtual device on
//! loopback, the host's Modbus link through a seeded fault-injecting TCP proxy (drop, delay, garbage,
//! connection reset), a full wide-angle bridge exam per schedule. Every exam completes (identical to the clean
//! one) or aborts safe; never unsafe: tube left enabled, compression left on, a beam not in the record, or a
//! complete exam that differs from the clean one. The table is printed (`--nocapture`); more schedules per kind
//! with `TOMOLAB_FAULT_CASES`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tomolab_firmware_bridge::device::DeviceConfig;
use tomolab_firmware_bridge::device::server::{ServerHandle, serve};
use tomolab_firmware_bridge::host::backend::{Endpoints, MotionConfig, connect};
use tomolab_hal::Devices;
use tomolab_hal::mock::{MockConfig, MockUnit};

use crate::common::*;
use crate::server::real_link;
use crate::server::wrappers::WatchedTube;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModbusFault {
    /// A chunk (a request or an answer) is lost.
    Drop,
    /// A chunk arrives late (sometimes later than the host's timeout).
    Delay,
    /// Random bytes arrive between frames, or a chunk is replaced by random bytes (a stray or broken sender).
    Garbage,
    /// Random bytes are spliced inside a frame. TCP itself never does this; Modbus TCP has no checksum, so a
    /// splice inside a data field that keeps the frame well-formed is undetectable at the Modbus layer: reported
    /// (the "data differs" column), not asserted.
    Splice,
    /// The connection is torn down (both directions shut).
    Reset,
}

const KINDS: [ModbusFault; 5] =
    [ModbusFault::Drop, ModbusFault::Delay, ModbusFault::Garbage, ModbusFault::Splice, ModbusFault::Reset];

/// Forwards one direction, injecting `kind` per chunk at `rate`.
fn pump(mut from: TcpStream, mut to: TcpStream, kind: ModbusFault, rate: f64, seed: u64, injected: Arc<AtomicU64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = [0u8; 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = buf[..n].to_vec();
        if rng.random_bool(rate) {
            injected.fetch_add(1, Ordering::Relaxed);
            match kind {
                ModbusFault::Drop => continue,
                ModbusFault::Delay => {
                    let ms =
                        if rng.random_bool(0.3) { rng.random_range(1000..1400) } else { rng.random_range(20..600) };
                    std::thread::sleep(Duration::from_millis(ms));
                }
                ModbusFault::Garbage | ModbusFault::Splice => {
                    let mut junk = vec![0u8; rng.random_range(1..40)];
                    rng.fill_bytes(&mut junk);
                    if kind == ModbusFault::Splice {
                        let at = rng.random_range(0..=chunk.len());
                        chunk.splice(at..at, junk);
                    } else if rng.random_bool(0.5) {
                        chunk = junk;
                    } else {
                        chunk.splice(0..0, junk);
                    }
                }
                ModbusFault::Reset => {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    break;
                }
            }
        }
        if to.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A loopback proxy to `target` that injects `kind` into every connection; returns its address.
fn fault_proxy(
    target: SocketAddr,
    kind: ModbusFault,
    rate: f64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let injected = Arc::new(AtomicU64::new(0));
    let counter = injected.clone();
    std::thread::spawn(move || {
        let mut conn = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let _ = client.set_nonblocking(false);
            let Ok(server) = TcpStream::connect(target) else { continue };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            conn += 1;
            let s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(conn);
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (i1, i2) = (injected.clone(), injected.clone());
            std::thread::spawn(move || pump(client, server, kind, rate, s, i1));
            std::thread::spawn(move || pump(s2, c2, kind, rate, !s, i2));
        }
    });
    (addr, counter)
}

#[derive(Debug, Default, Clone, Copy)]
struct Row {
    completed: u32,
    aborted: u32,
    unsafe_: u32,
    differs: u32,
    faults: u64,
}

/// Paddle force register (0.1 N) read straight from the device, not through the proxy.
fn paddle_force_dn(h: &ServerHandle) -> u16 {
    use tomolab_firmware_bridge::host::modbus::{ModbusClient, ModbusTarget, RegisterBus};
    let mut c = ModbusClient::new(ModbusTarget::Tcp(h.modbus_addr.unwrap()), 1, Duration::from_secs(5)).unwrap();
    c.read(tomolab_firmware_bridge::protocol::regs::PADDLE_FORCE_DN, 1).unwrap()[0]
}

/// One schedule: a fresh device, the host's Modbus link through the proxy, one exam. Returns the row cell and
/// a description of what was unsafe (if anything).
fn run_schedule(kind: ModbusFault, seed: u64, clean: &tomolab_hal::Acquisition) -> (Row, Vec<String>) {
    let disabled = Arc::new(AtomicBool::new(true));
    let beams = Arc::new(AtomicU32::new(0));
    let (dis, bm) = (disabled.clone(), beams.clone());
    let config = loopback_serve(DeviceConfig { link_timeout: Duration::from_secs(3), ..DeviceConfig::default() });
    let h = serve(config, move || {
        let d = MockUnit::new(MockConfig::default(), vec![]).devices();
        Devices {
            tube: WatchedTube { inner: d.tube, disabled: dis, beams: bm },
            gantry: d.gantry,
            detector: d.detector,
            paddle: d.paddle,
            interlocks: d.interlocks,
        }
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = rng.random_range(0.005..0.03);
    let (proxy, injected) = fault_proxy(h.modbus_addr.unwrap(), kind, rate, seed, stop.clone());
    let ep = Endpoints { serial: h.pty_path.clone().unwrap(), modbus: proxy, frames: h.frames_addr.unwrap() };
    let motion = MotionConfig { command_timeout: Duration::from_secs(10), ..MotionConfig::default() };
    let mut row = Row::default();
    let mut problems = Vec::new();
    let mut differs = Vec::new();
    match connect(&ep, real_link(), motion) {
        Ok((mut devices, hb)) => {
            let acq = run_exam(&mut devices);
            drop((devices, hb));
            let fired = beams.load(Ordering::Relaxed) as usize;
            if fired != acq.meta.views.len() {
                problems.push(format!("{fired} beams for {} recorded views", acq.meta.views.len()));
            }
            if acq.is_complete() {
                let mut got = without_timestamps(acq);
                got.meta.safe_state_errors.clear();
                if got != *clean {
                    let views = got.meta.views.iter().zip(&clean.meta.views);
                    let diff: Vec<String> = views
                        .enumerate()
                        .filter(|(_, (a, b))| a != b)
                        .map(|(i, (a, b))| format!("view {i}: {a:?} vs {b:?}"))
                        .take(2)
                        .collect();
                    differs
                        .push(format!("{kind:?} seed {seed:#x}: a complete exam differs from the clean one: {diff:?}"));
                    row.differs += 1;
                }
                row.completed += 1;
            } else {
                row.aborted += 1;
            }
        }
        Err(_) => row.aborted += 1,
    }
    if !disabled.load(Ordering::Relaxed) {
        problems.push("tube left enabled".into());
    }
    let force = paddle_force_dn(&h);
    if force != 0 {
        problems.push(format!("compression left at {} N", f64::from(force) / 10.0));
    }
    stop.store(true, Ordering::Relaxed);
    row.faults = injected.load(Ordering::Relaxed);
    if !problems.is_empty() {
        row.unsafe_ += 1;
        differs.push(format!("UNSAFE {kind:?} seed {seed:#x} rate {rate:.3}: {}", problems.join("; ")));
    }
    (row, differs)
}

#[test]
fn modbus_faults_on_tcp_complete_or_abort_safe() {
    let per_kind: u64 = std::env::var("TOMOLAB_FAULT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let clean = without_timestamps(direct_exam());
    // One thread per fault kind (the exams wait on timeouts, not on the CPU).
    let results: Vec<(ModbusFault, Row, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = KINDS
            .iter()
            .map(|&kind| {
                let clean = &clean;
                scope.spawn(move || {
                    let mut total = Row::default();
                    let mut bad = Vec::new();
                    for i in 0..per_kind {
                        let seed = 0x4D46_0000 + (kind as u64) * 1000 + i;
                        let (row, problem) = run_schedule(kind, seed, clean);
                        total.completed += row.completed;
                        total.aborted += row.aborted;
                        total.unsafe_ += row.unsafe_;
                        total.differs += row.differs;
                        total.faults += row.faults;
                        bad.extend(problem);
                    }
                    (kind, total, bad)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("Modbus faults on TCP, {per_kind} schedules per kind:");
    eprintln!("| fault | faults injected | completed | aborted | unsafe | data differs |");
    eprintln!("|---|---|---|---|---|---|");
    for (kind, row, _) in &results {
        let (f, c, a, u, d) = (row.faults, row.completed, row.aborted, row.unsafe_, row.differs);
        eprintln!("| {kind:?} | {f} | {c} | {a} | {u} | {d} |");
    }
    for (_, _, notes) in &results {
        for n in notes {
            eprintln!("  {n}");
        }
    }
    let unsafe_: u32 = results.iter().map(|(_, r, _)| r.unsafe_).sum();
    assert_eq!(unsafe_, 0, "unsafe outcomes (see above)");
    for (kind, row, notes) in &results {
        if *kind != ModbusFault::Splice {
            assert_eq!(row.differs, 0, "{kind:?}: {notes:#?}");
        }
    }
    let completed: u32 = results.iter().map(|(_, r, _)| r.completed).sum();
    assert!(completed > 0, "no exam completed under any Modbus fault: the link never recovers");
}
