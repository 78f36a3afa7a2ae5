//! What goes on the wires, for both sides: the serial packet framing ([`wire`]) and its typed messages
//! ([`message`]), the detector frame stream ([`frames`]), the Modbus register map ([`regs`]) and Modbus ADUs
//! as the device decodes them ([`modbus`]). Pure codecs: no I/O, no clock.

pub mod frames;
pub mod message;
pub mod modbus;
pub mod regs;
pub mod wire;
