//! The control-link transport: a serial port or a new pseudo-terminal. A reader thread stamps the bytes with
//! their arrival time and hands them to the protocol thread, which alone writes to the port.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Event, SerialEndpoint};

/// The opened control link: its writer, reader thread, and (for a pty) the path and the slave end to keep.
pub(super) struct SerialLink {
    pub writer: Box<dyn Write + Send>,
    pub reader: JoinHandle<()>,
    pub pty_path: Option<String>,
    pub pty_slave: Option<serialport::TTYPort>,
}

/// Opens the endpoint (`None` for [`SerialEndpoint::None`]) and starts its reader.
pub(super) fn open(
    endpoint: &SerialEndpoint,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> std::io::Result<Option<SerialLink>> {
    let io_err = |e: serialport::Error| std::io::Error::other(e.to_string());
    let (mut port, pty_path, pty_slave) = match endpoint {
        SerialEndpoint::None => return Ok(None),
        SerialEndpoint::Path(path) => (serialport::new(path, 115_200).open_native().map_err(io_err)?, None, None),
        SerialEndpoint::Pty => {
            let (master, slave) = serialport::TTYPort::pair().map_err(io_err)?;
            (master, serialport::SerialPort::name(&slave), Some(slave))
        }
    };
    serialport::SerialPort::set_timeout(&mut port, Duration::from_millis(20)).map_err(io_err)?;
    let mut reader = port.try_clone_native().map_err(io_err)?;
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while !stop.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(n) => {
                    if tx.send(Event::Serial(buf[..n].to_vec(), start.elapsed())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // EIO while no host holds the pty open, and similar: wait and retry.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok(Some(SerialLink { writer: Box::new(port), reader: thread, pty_path, pty_slave }))
}
