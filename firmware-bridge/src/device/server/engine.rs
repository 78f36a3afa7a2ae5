//! The two device threads: the protocol thread (owns the [`DeviceProtocol`] and the serial writer; never
//! blocks on the backend) and the backend worker (owns the unit, built there from a `Send` factory, so
//! `!Send` backends such as the mock work; runs one job at a time).
//!
//! A backend call that panics is caught on the worker: the unit goes safe, the request is answered with the
//! failure (Modbus: exception 04), the device restarts (session closed) and serving goes on. After
//! [`MAX_DEVICE_FAILURES`] panics in a row the worker stops; the unit stays safe and the protocol thread answers
//! every later request with an error naming the failure.

use std::collections::HashMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tomolab_hal::Unit;

use super::Event;
use super::modbus::ModbusReply;
use crate::device::{Completion, DeviceBackend, DeviceProtocol, Job, ModbusStep, answer_pdu};
use crate::protocol::frames::encode_frame;
use crate::protocol::modbus::PduRequest;

/// Consecutive backend failures after which the device gives up (safe, answering every request with the
/// failure).
pub const MAX_DEVICE_FAILURES: u32 = 8;

/// A backend call that panicked: the panic's message, and whether the worker gave up.
#[derive(Debug)]
pub(super) struct Failure {
    message: String,
    permanent: bool,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => format!("backend panicked: {s}"),
        (_, Some(s)) => format!("backend panicked: {s}"),
        _ => "backend panicked".to_string(),
    }
}

/// The backend worker: builds the unit, then runs jobs until the channel closes or it gives up; safe on exit.
pub(super) fn worker<F, U>(factory: F, jobs: mpsc::Receiver<Job>, events: mpsc::Sender<Event>)
where
    F: FnOnce() -> U,
    U: Unit,
{
    let mut backend = match catch_unwind(AssertUnwindSafe(factory)) {
        Ok(unit) => DeviceBackend::new(unit),
        Err(p) => {
            let message = panic_message(p.as_ref());
            let _ = events.send(Event::Done(Err(Failure { message, permanent: true })));
            return;
        }
    };
    let mut consecutive = 0;
    while let Ok(job) = jobs.recv() {
        match catch_unwind(AssertUnwindSafe(|| backend.run(&job))) {
            Ok(outcome) => {
                consecutive = 0;
                if events.send(Event::Done(Ok(outcome))).is_err() {
                    break;
                }
            }
            Err(p) => {
                consecutive += 1;
                let safe = catch_unwind(AssertUnwindSafe(|| backend.go_safe())).is_ok();
                let permanent = !safe || consecutive >= MAX_DEVICE_FAILURES;
                let _ = events.send(Event::Done(Err(Failure { message: panic_message(p.as_ref()), permanent })));
                if permanent {
                    return;
                }
            }
        }
    }
    let _ = catch_unwind(AssertUnwindSafe(|| backend.go_safe()));
}

/// What the protocol thread drives.
pub(super) struct Engine {
    pub protocol: DeviceProtocol,
    pub events: mpsc::Receiver<Event>,
    pub jobs: mpsc::Sender<Job>,
    pub serial: Option<Box<dyn Write + Send>>,
    pub frames: Option<mpsc::Sender<Vec<u8>>>,
    pub failures: Arc<AtomicU64>,
    pub start: Instant,
    waiting: HashMap<u64, (PduRequest, ModbusReply)>,
}

impl Engine {
    pub fn new(protocol: DeviceProtocol, events: mpsc::Receiver<Event>, jobs: mpsc::Sender<Job>) -> Self {
        Self {
            protocol,
            events,
            jobs,
            serial: None,
            frames: None,
            failures: Arc::new(AtomicU64::new(0)),
            start: Instant::now(),
            waiting: HashMap::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(w) = self.serial.as_mut()
            && !bytes.is_empty()
        {
            let _ = w.write_all(bytes).and_then(|()| w.flush());
        }
    }

    fn deliver(&mut self, done: Completion) {
        self.write(&done.serial);
        for (ticket, result) in done.modbus {
            if let Some((req, reply)) = self.waiting.remove(&ticket) {
                let _ = reply.send(answer_pdu(&req, result));
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let now = self.start.elapsed();
        match event {
            Event::Serial(bytes, at) => {
                let out = self.protocol.on_serial_bytes(&bytes, at);
                self.write(&out);
            }
            Event::Modbus(req, reply) => match self.protocol.on_modbus(&req) {
                ModbusStep::Answer(r) => {
                    let _ = reply.send(answer_pdu(&req, r));
                }
                ModbusStep::Queued(ticket) => {
                    self.waiting.insert(ticket, (req, reply));
                }
            },
            Event::Done(Ok(outcome)) => {
                let done = self.protocol.complete(outcome, now);
                self.deliver(done);
            }
            Event::Done(Err(Failure { message, permanent })) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let done = self.protocol.fail(&message, permanent);
                self.deliver(done);
            }
        }
    }

    /// Runs until `stop`: events as they come (a bounded batch, so a flood cannot starve the watchdog), then the
    /// watchdog and heartbeats, the next backend job, and the frames.
    pub fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            match self.events.recv_timeout(Duration::from_millis(2)) {
                Ok(ev) => {
                    self.handle(ev);
                    for _ in 0..64 {
                        match self.events.try_recv() {
                            Ok(ev) => self.handle(ev),
                            Err(_) => break,
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // No transport left: keep the watchdog running until stopped.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(2)),
            }
            let out = self.protocol.poll(self.start.elapsed());
            self.write(&out);
            if let Some(job) = self.protocol.next_job()
                && self.jobs.send(job).is_err()
            {
                // The worker is gone (it gave up): nothing can run any more.
                let done = self.protocol.fail("the backend worker stopped", true);
                self.deliver(done);
            }
            for f in self.protocol.take_frames() {
                if let Some(ftx) = self.frames.as_ref() {
                    let _ = ftx.send(encode_frame(&f));
                }
            }
        }
    }
}
