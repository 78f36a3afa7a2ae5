//! Fault injection: a wrapper around any byte stream that corrupts it from a seed.
//!
//! [`FaultyStream`] applies one [`FaultKind`] at a seeded rate, inside a window of the byte stream, to what is
//! read and what is written: dropped, flipped, duplicated or delayed bytes, reads and writes split into single
//! bytes, inserted garbage, and a device reset (the hook restarts the device; bytes in flight are lost and the
//! reader sees `ConnectionReset`). Same seed, same faults.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What goes wrong on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Bytes are lost.
    Drop,
    /// A bit of a byte is inverted.
    Flip,
    /// Bytes (and whole writes) arrive twice.
    Duplicate,
    /// Bytes arrive late (reads report `TimedOut` meanwhile).
    Delay,
    /// Every read and write moves a single byte.
    SplitReads,
    /// Random bytes are inserted.
    Garbage,
    /// The device restarts.
    Reset,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Drop,
        FaultKind::Flip,
        FaultKind::Duplicate,
        FaultKind::Delay,
        FaultKind::SplitReads,
        FaultKind::Garbage,
        FaultKind::Reset,
    ];
}

/// One seeded fault schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaultPlan {
    /// The fault.
    pub kind: FaultKind,
    /// Probability per byte (per write for `Reset` and whole-write duplication).
    pub rate: f64,
    /// First byte (counted over both directions) at which faults may occur.
    pub start_byte: u64,
    /// Number of bytes during which faults may occur.
    pub window: u64,
}

impl LinkFaultPlan {
    /// A random plan of this kind, for a stream of roughly `stream_len` bytes.
    pub fn seeded(kind: FaultKind, seed: u64, stream_len: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let rate = match kind {
            FaultKind::Reset => rng.random_range(0.002..0.03),
            FaultKind::SplitReads => 1.0,
            _ => rng.random_range(0.0005..0.01),
        };
        let start_byte = rng.random_range(0..stream_len.max(1));
        let window = rng.random_range(16..stream_len.max(17));
        Self { kind, rate, start_byte, window }
    }
}

type Hook = Box<dyn FnMut()>;

/// A byte stream with injected faults.
pub struct FaultyStream<S> {
    inner: S,
    plan: LinkFaultPlan,
    rng: ChaCha8Rng,
    bytes: u64,
    pending: VecDeque<u8>,
    delay_reads: u32,
    reset_pending: bool,
    hook: Option<Hook>,
    /// Faults injected so far.
    pub injected: u64,
}

impl<S> std::fmt::Debug for FaultyStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStream").field("plan", &self.plan).field("injected", &self.injected).finish()
    }
}

impl<S> FaultyStream<S> {
    /// Wraps `inner` with this plan and seed.
    pub fn new(inner: S, plan: LinkFaultPlan, seed: u64) -> Self {
        Self {
            inner,
            plan,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bytes: 0,
            pending: VecDeque::new(),
            delay_reads: 0,
            reset_pending: false,
            hook: None,
            injected: 0,
        }
    }

    /// Sets what a `Reset` fault does to the device (e.g. restart the virtual device).
    pub fn with_reset_hook(mut self, hook: impl FnMut() + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    fn active(&self) -> bool {
        self.bytes >= self.plan.start_byte && self.bytes < self.plan.start_byte.saturating_add(self.plan.window)
    }

    fn hit(&mut self) -> bool {
        let hit = self.active() && self.rng.random_bool(self.plan.rate.clamp(0.0, 1.0));
        if hit {
            self.injected += 1;
        }
        hit
    }

    /// Passes bytes through the byte-level faults.
    fn mangle(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() + 8);
        for &b in input {
            self.bytes += 1;
            let kind = self.plan.kind;
            match kind {
                FaultKind::Drop if self.hit() => {}
                FaultKind::Flip if self.hit() => {
                    let bit = self.rng.random_range(0..8);
                    out.push(b ^ (1 << bit));
                }
                FaultKind::Duplicate if self.hit() => {
                    out.push(b);
                    out.push(b);
                }
                FaultKind::Garbage if self.hit() => {
                    let n = self.rng.random_range(1..16);
                    for _ in 0..n {
                        out.push(self.rng.random());
                    }
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
        out
    }

    fn fire_reset(&mut self) {
        self.pending.clear();
        self.reset_pending = true;
        if let Some(hook) = self.hook.as_mut() {
            hook();
        }
    }
}

impl<S: Read> Read for FaultyStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reset_pending {
            self.reset_pending = false;
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected device reset"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() || self.delay_reads > 0 {
            let mut tmp = [0u8; 512];
            let want = if self.plan.kind == FaultKind::SplitReads { 1 } else { tmp.len() };
            match self.inner.read(&mut tmp[..want]) {
                Ok(n) => {
                    if self.plan.kind == FaultKind::Reset && n > 0 && self.active() && self.hit() {
                        self.bytes += n as u64;
                        self.fire_reset();
                        return Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected device reset"));
                    }
                    if self.plan.kind == FaultKind::Delay && n > 0 && self.delay_reads == 0 && self.hit() {
                        self.delay_reads = self.rng.random_range(1..40);
                    }
                    let mangled = self.mangle(&tmp[..n]);
                    self.pending.extend(mangled);
                }
                Err(e) if self.pending.is_empty() => return Err(e),
                Err(e) if self.delay_reads > 0 => {
                    self.delay_reads -= 1;
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        if self.delay_reads > 0 {
            self.delay_reads -= 1;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "injected delay"));
        }
        let max = if self.plan.kind == FaultKind::SplitReads { 1 } else { buf.len() };
        let n = max.min(self.pending.len());
        for (slot, b) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *slot = b;
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no data"));
        }
        Ok(n)
    }
}

impl<S: Write> Write for FaultyStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.plan.kind == FaultKind::Reset && self.hit() {
            // The device restarts while this write is on the wire: it is lost.
            self.bytes += buf.len() as u64;
            self.fire_reset();
            return Ok(buf.len());
        }
        let whole_again = self.plan.kind == FaultKind::Duplicate && self.hit();
        let mangled = self.mangle(buf);
        if self.plan.kind == FaultKind::SplitReads {
            for b in &mangled {
                self.inner.write_all(std::slice::from_ref(b))?;
            }
        } else {
            self.inner.write_all(&mangled)?;
        }
        if whole_again {
            self.inner.write_all(&mangled)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
