//! The host side: the HAL traits implemented over the links ([`backend`]), on top of the control client
//! ([`client`]), the Modbus client ([`modbus`]) and the frame source ([`framesource`]).

pub mod backend;
pub mod client;
pub mod framesource;
pub mod modbus;
