//! The host side of the Modbus link: a register bus over tokio-modbus (TCP, or RTU framing over any byte
//! stream) with a timeout on every call, reconnection after a timeout or link error, and one request in
//! flight per context.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio_modbus::client::{Client, Context};
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tomolab_hal::ErrorKind;

use crate::error::BridgeError;

/// Register-level access to the gantry/paddle controller.
pub trait RegisterBus {
    /// Reads `count` holding registers from `addr`.
    fn read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, BridgeError>;
    /// Writes registers from `addr`.
    fn write(&mut self, addr: u16, values: &[u16]) -> Result<(), BridgeError>;
}

impl<B: RegisterBus + ?Sized> RegisterBus for Box<B> {
    fn read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, BridgeError> {
        (**self).read(addr, count)
    }
    fn write(&mut self, addr: u16, values: &[u16]) -> Result<(), BridgeError> {
        (**self).write(addr, values)
    }
}

/// The [`ErrorKind`] of a Modbus exception answered by the device.
pub fn exception_kind(e: ExceptionCode) -> ErrorKind {
    match e {
        ExceptionCode::IllegalDataAddress | ExceptionCode::IllegalDataValue => ErrorKind::OutOfRange,
        ExceptionCode::ServerDeviceBusy | ExceptionCode::Acknowledge => ErrorKind::NotReady,
        ExceptionCode::ServerDeviceFailure => ErrorKind::DeviceFault,
        ExceptionCode::IllegalFunction => ErrorKind::Refused,
        _ => ErrorKind::Other,
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Context>>>>;

/// How to (re)open a Modbus context.
pub enum ModbusTarget {
    /// Modbus TCP at this address.
    Tcp(SocketAddr),
    /// Modbus RTU framing over a TCP byte stream (serial-to-Ethernet gateways, and the virtual device).
    RtuOverTcp(SocketAddr),
    /// Any transport: a function that opens a fresh context (e.g. `rtu::attach` over an async serial port).
    Custom(Box<dyn FnMut() -> ConnectFuture>),
}

impl std::fmt::Debug for ModbusTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "Tcp({a})"),
            Self::RtuOverTcp(a) => write!(f, "RtuOverTcp({a})"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A blocking Modbus client: every call under a timeout; after a timeout or link error the context is dropped
/// and the next call reconnects. Calls are sequential, so one request is in flight per context.
pub struct ModbusClient {
    runtime: tokio::runtime::Runtime,
    target: ModbusTarget,
    unit: u8,
    timeout: Duration,
    ctx: Option<Context>,
    /// Contexts opened (1 + reconnects).
    pub connects: u64,
}

impl std::fmt::Debug for ModbusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusClient")
            .field("target", &self.target)
            .field("unit", &self.unit)
            .field("timeout", &self.timeout)
            .field("connected", &self.ctx.is_some())
            .field("connects", &self.connects)
            .finish()
    }
}

impl ModbusClient {
    /// A client for this target and unit id; connects on first use.
    pub fn new(target: ModbusTarget, unit: u8, timeout: Duration) -> Result<Self, BridgeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BridgeError::link(format!("modbus runtime: {e}")))?;
        Ok(Self { runtime, target, unit, timeout, ctx: None, connects: 0 })
    }

    fn connect(&mut self) -> Result<(), BridgeError> {
        let slave = Slave(self.unit);
        let fut: ConnectFuture = match &mut self.target {
            ModbusTarget::Tcp(addr) => {
                let addr = *addr;
                Box::pin(async move { tokio_modbus::client::tcp::connect_slave(addr, slave).await })
            }
            ModbusTarget::RtuOverTcp(addr) => {
                let addr = *addr;
                Box::pin(async move {
                    let stream = tokio::net::TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Ok(tokio_modbus::client::rtu::attach_slave(stream, slave))
                })
            }
            ModbusTarget::Custom(open) => open(),
        };
        let timeout = self.timeout;
        let ctx = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, fut).await })
            .map_err(|_| BridgeError::timeout("modbus connect timed out"))?
            .map_err(|e| BridgeError::link(format!("modbus connect: {e}")))?;
        self.ctx = Some(ctx);
        self.connects += 1;
        Ok(())
    }

    /// The runtime, the connected context (connecting first if needed) and the timeout of one request.
    fn link(&mut self) -> Result<(&tokio::runtime::Runtime, &mut Context, Duration), BridgeError> {
        if self.ctx.is_none() {
            self.connect()?;
        }
        let ctx = self.ctx.as_mut().ok_or_else(|| BridgeError::link("modbus not connected"))?;
        Ok((&self.runtime, ctx, self.timeout))
    }

    fn settle<T>(
        &mut self,
        what: &str,
        r: Result<tokio_modbus::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, BridgeError> {
        match r {
            Err(_) => {
                self.ctx = None;
                Err(BridgeError::timeout(format!("modbus {what}: no answer within {:?}", self.timeout)))
            }
            Ok(Err(e)) => {
                self.ctx = None;
                Err(BridgeError::link(format!("modbus {what}: {e}")))
            }
            Ok(Ok(Err(exception))) => {
                Err(BridgeError::new(exception_kind(exception), format!("modbus {what}: device answered {exception}")))
            }
            Ok(Ok(Ok(v))) => Ok(v),
        }
    }
}

// The calls go through `Client::call` and the answers are checked here: tokio-modbus's `Reader`/`Writer`
// helpers only `debug_assert!` that an answer's count and echoed address match the request (a panic from the
// wire in a debug build; a mismatched write echo accepted silently in release). Found by fuzz_modbus.
impl RegisterBus for ModbusClient {
    fn read(&mut self, addr: u16, count: u16) -> Result<Vec<u16>, BridgeError> {
        let (runtime, ctx, timeout) = self.link()?;
        let request = Request::ReadHoldingRegisters(addr, count);
        let r = runtime.block_on(async { tokio::time::timeout(timeout, ctx.call(request)).await });
        let what = format!("read {addr}+{count}");
        match self.settle(&what, r)? {
            Response::ReadHoldingRegisters(v) if v.len() == usize::from(count) => Ok(v),
            other => {
                self.ctx = None;
                Err(BridgeError::link(format!("modbus {what}: mismatched answer {}", describe(&other))))
            }
        }
    }

    fn write(&mut self, addr: u16, values: &[u16]) -> Result<(), BridgeError> {
        let (runtime, ctx, timeout) = self.link()?;
        let request = Request::WriteMultipleRegisters(addr, values.into());
        let r = runtime.block_on(async { tokio::time::timeout(timeout, ctx.call(request)).await });
        let what = format!("write {addr}+{}", values.len());
        match self.settle(&what, r)? {
            Response::WriteMultipleRegisters(a, n) if a == addr && usize::from(n) == values.len() => Ok(()),
            other => {
                self.ctx = None;
                Err(BridgeError::link(format!("modbus {what}: mismatched answer {}", describe(&other))))
            }
        }
    }
}

/// A short description of an answer that did not match its request.
fn describe(r: &Response) -> String {
    match r {
        Response::ReadHoldingRegisters(v) => format!("of {} registers", v.len()),
        Response::WriteMultipleRegisters(a, n) => format!("echoing {a}+{n}"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

impl ModbusClient {
    /// Drops the Modbus context; the next call reconnects (what a timeout or link error does).
    pub fn disconnect(&mut self) {
        self.ctx = None;
    }
}
