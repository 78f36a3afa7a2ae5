//! The Modbus transports: Modbus TCP, and Modbus RTU framing over TCP (what a serial-to-Ethernet gateway
//! carries). One thread per connection decodes ADUs; malformed or unsupported requests get their exception
//! at once, the rest go to the protocol thread and wait for its answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Event;
use crate::protocol::modbus::{
    EX_GATEWAY_TARGET_FAILED, EX_SERVER_DEVICE_BUSY, EX_SERVER_DEVICE_FAILURE, MbapDecoder, MbapFrame, PduRequest,
    RtuDecoder, RtuFrame, UNIT_ID, decode_request_pdu, exception_pdu,
};

/// Longest wait of a Modbus connection for the device's answer; then it answers exception 06 (busy).
const MODBUS_DEVICE_TIMEOUT: Duration = Duration::from_secs(5);
/// Modbus connections served at once; further connections are closed at once.
const MAX_MODBUS_CONNECTIONS: usize = 8;

/// Where a Modbus connection's answer PDU goes.
pub(super) type ModbusReply = mpsc::SyncSender<Vec<u8>>;

/// Binds `addr` and serves Modbus (TCP, or RTU framing with `rtu`) until `stop`; the thread and bound address.
pub(super) fn spawn_modbus(
    addr: SocketAddr,
    rtu: bool,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(JoinHandle<()>, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let thread = std::thread::spawn(move || {
        let open = Arc::new(AtomicUsize::new(0));
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    conns.retain(|c| !c.is_finished());
                    if open.load(Ordering::Relaxed) >= MAX_MODBUS_CONNECTIONS {
                        drop(s);
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    let (tx, stop, open) = (tx.clone(), stop.clone(), open.clone());
                    conns.push(std::thread::spawn(move || {
                        let _ = serve_modbus_connection(s, rtu, &tx, &stop);
                        open.fetch_sub(1, Ordering::Relaxed);
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Ok((thread, bound))
}

/// The device thread's answer PDU to a request, or exception 04 (device failed) / 06 (device busy).
fn ask_device(tx: &mpsc::Sender<Event>, req: PduRequest) -> Vec<u8> {
    let function = req.function();
    let (reply, answer) = mpsc::sync_channel(1);
    if tx.send(Event::Modbus(req, reply)).is_err() {
        return exception_pdu(function, EX_SERVER_DEVICE_FAILURE);
    }
    match answer.recv_timeout(MODBUS_DEVICE_TIMEOUT) {
        Ok(pdu) => pdu,
        Err(mpsc::RecvTimeoutError::Timeout) => exception_pdu(function, EX_SERVER_DEVICE_BUSY),
        Err(mpsc::RecvTimeoutError::Disconnected) => exception_pdu(function, EX_SERVER_DEVICE_FAILURE),
    }
}

/// The answer PDU to a request PDU for this unit: malformed or unsupported requests get their exception
/// without reaching the device.
fn answer_pdu(tx: &mpsc::Sender<Event>, pdu: &[u8]) -> Vec<u8> {
    match decode_request_pdu(pdu) {
        Ok(req) => ask_device(tx, req),
        Err((function, code)) => exception_pdu(function, code),
    }
}

/// One Modbus connection (TCP, or RTU framing over TCP), until the peer closes, the stream breaks or the
/// server stops. Unit ids: see docs/modbus.md.
fn serve_modbus_connection(
    mut stream: TcpStream,
    rtu: bool,
    tx: &mpsc::Sender<Event>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut tcp = MbapDecoder::new();
    let mut rtu_decoder = RtuDecoder::new();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                // The line went quiet: an RTU partial frame is over (the inter-frame silence).
                rtu_decoder.idle();
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        if rtu {
            for RtuFrame { unit, pdu } in rtu_decoder.push(&buf[..n]) {
                // Frames for other slaves on the bus, and broadcasts (which nobody acknowledges), are ignored.
                if unit == UNIT_ID {
                    out.extend(RtuFrame { unit, pdu: answer_pdu(tx, &pdu) }.encode());
                }
            }
        } else {
            let frames = tcp.push(&buf[..n]).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
            for MbapFrame { transaction, unit, pdu } in frames? {
                let answer = if unit == UNIT_ID {
                    answer_pdu(tx, &pdu)
                } else {
                    let function = pdu.first().copied().unwrap_or(0);
                    exception_pdu(function, EX_GATEWAY_TARGET_FAILED)
                };
                out.extend(MbapFrame { transaction, unit, pdu: answer }.encode());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
        }
    }
    Ok(())
}
