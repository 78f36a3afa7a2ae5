//! A single-threaded co-simulation of host and virtual device on virtual time, for tests and fault injection.
//!
//! The host's transports are in-memory: a write hands the bytes to the [`VirtualDevice`] at once; a read that
//! finds nothing advances the virtual clock by one tick and lets the device run (heartbeats, link watchdog)
//! before reporting `TimedOut`. Timeouts therefore cost loop iterations, not wall-clock time, and every run is
//! deterministic. Backends that are `!Send` (the mock shares `Rc<RefCell<..>>`) work as they are.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use tomolab_hal::Unit;

use crate::device::{DeviceConfig, VirtualDevice};
use crate::error::BridgeError;
use crate::host::client::TimeSource;
use crate::host::modbus::{RegisterBus, exception_kind};
use crate::protocol::frames::encode_frame;

/// A shared virtual clock.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Rc<Cell<Duration>>);

impl VirtualClock {
    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl TimeSource for VirtualClock {
    fn now(&self) -> Duration {
        self.0.get()
    }
}

#[derive(Debug)]
struct Shared<U> {
    device: VirtualDevice<U>,
    to_host: VecDeque<u8>,
    frames: VecDeque<u8>,
}

type SharedState<U> = Rc<RefCell<Shared<U>>>;

/// A virtual device on virtual time, with in-memory host transports (the host's loopback to it).
#[derive(Debug)]
pub struct LoopbackUnit<U> {
    shared: SharedState<U>,
    clock: VirtualClock,
    tick: Duration,
}

impl<U> Clone for LoopbackUnit<U> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), clock: self.clock.clone(), tick: self.tick }
    }
}

impl<U: Unit> LoopbackUnit<U> {
    /// A simulated unit; an empty read advances virtual time by `tick`.
    pub fn new(unit: U, config: DeviceConfig, tick: Duration) -> Self {
        let shared =
            Shared { device: VirtualDevice::new(unit, config), to_host: VecDeque::new(), frames: VecDeque::new() };
        Self { shared: Rc::new(RefCell::new(shared)), clock: VirtualClock::default(), tick }
    }

    /// The virtual clock.
    pub fn clock(&self) -> VirtualClock {
        self.clock.clone()
    }

    /// The host end of the serial link.
    pub fn serial(&self) -> SimSerial<U> {
        SimSerial { unit: self.clone() }
    }

    /// The host end of the frame stream.
    pub fn frame_stream(&self) -> SimFrames<U> {
        SimFrames { unit: self.clone() }
    }

    /// The host's register bus to the device's Modbus map.
    pub fn bus(&self) -> SimBus<U> {
        SimBus { unit: self.clone() }
    }

    /// Runs `f` on the device.
    pub fn with_device<R>(&self, f: impl FnOnce(&mut VirtualDevice<U>) -> R) -> R {
        f(&mut self.shared.borrow_mut().device)
    }

    /// Restarts the device (it goes safe and forgets its session); bytes in flight are lost.
    pub fn reset_device(&self) {
        let mut s = self.shared.borrow_mut();
        s.device.reset();
        s.to_host.clear();
        s.frames.clear();
    }

    /// Lets `by` of virtual time pass with no host traffic (the device's watchdog runs).
    pub fn idle(&self, by: Duration) {
        self.clock.advance(by);
        self.run_device();
    }

    fn run_device(&self) {
        let now = self.clock.now();
        let mut s = self.shared.borrow_mut();
        let out = s.device.poll(now);
        s.to_host.extend(out);
        Self::drain_frames(&mut s);
    }

    fn drain_frames(s: &mut Shared<U>) {
        for f in s.device.take_frames() {
            s.frames.extend(encode_frame(&f));
        }
    }

    fn read_from(&self, buf: &mut [u8], frames: bool) -> io::Result<usize> {
        let empty = {
            let s = self.shared.borrow();
            if frames { s.frames.is_empty() } else { s.to_host.is_empty() }
        };
        if empty {
            self.clock.advance(self.tick);
            self.run_device();
        }
        let mut s = self.shared.borrow_mut();
        let queue = if frames { &mut s.frames } else { &mut s.to_host };
        if queue.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no data"));
        }
        let n = buf.len().min(queue.len());
        for (slot, b) in buf.iter_mut().zip(queue.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

/// The host end of the simulated serial link.
#[derive(Debug)]
pub struct SimSerial<U> {
    unit: LoopbackUnit<U>,
}

impl<U: Unit> Read for SimSerial<U> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.unit.read_from(buf, false)
    }
}

impl<U: Unit> Write for SimSerial<U> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = self.unit.clock.now();
        let mut s = self.unit.shared.borrow_mut();
        let out = s.device.on_serial_bytes(buf, now);
        s.to_host.extend(out);
        LoopbackUnit::drain_frames(&mut s);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The host end of the simulated frame stream.
#[derive(Debug)]
pub struct SimFrames<U> {
    unit: LoopbackUnit<U>,
}

impl<U: Unit> Read for SimFrames<U> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.unit.read_from(buf, true)
    }
}

/// The host's register bus into the simulated device.
#[derive(Debug)]
pub struct SimBus<U> {
    unit: LoopbackUnit<U>,
}

impl<U: Unit> RegisterBus for SimBus<U> {
    fn read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, BridgeError> {
        self.unit
            .with_device(|d| d.modbus_read(addr, count))
            .map_err(|e| BridgeError::new(exception_kind(e), format!("modbus read {addr}: {e}")))
    }
    fn write(&mut self, addr: u16, values: &[u16]) -> Result<(), BridgeError> {
        self.unit
            .with_device(|d| d.modbus_write(addr, values))
            .map_err(|e| BridgeError::new(exception_kind(e), format!("modbus write {addr}: {e}")))
    }
}
