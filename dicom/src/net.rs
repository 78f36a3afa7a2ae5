//! C-ECHO and C-STORE as a service class user over dicom-ul (`tomolab dicom send`).
//!
//! One association per send: a presentation context is proposed for Verification and for each SOP class among
//! the files (Explicit and Implicit VR Little Endian), C-ECHO first, then one C-STORE per file with the data
//! set re-encoded in the transfer syntax the peer accepted and streamed through dicom-ul's P-DATA writer
//! (fragmented to the peer's maximum PDU length). The flow follows the dicom-rs project's own `echoscu` and
//! `storescu` tools (github.com/Enet4/dicom-rs), which show how dicom-ul's client is driven; the code is
//! tomolab's. A refused association, a closed port and a timeout each come back as
//! [`DicomError::Network`] naming the peer and what happened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};

use crate::error::{DicomError, Result};

/// Where to send, and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The called AE title.
    pub ae_title: String,
    /// `HOST:PORT`.
    pub address: String,
    /// Our (calling) AE title.
    pub calling_ae_title: String,
    /// Connection, read and write timeout.
    pub timeout: Duration,
}

impl Peer {
    /// Parses `AET@HOST:PORT` (the AE title 1-16 characters, no backslash; a port number).
    pub fn parse(spec: &str, calling_ae_title: &str) -> Result<Self> {
        let bad = |problem: &str| DicomError::Network { peer: spec.into(), problem: problem.into() };
        let (aet, address) = spec.split_once('@').ok_or_else(|| bad("expected AET@HOST:PORT"))?;
        check_ae_title(aet).map_err(|p| bad(&p))?;
        check_ae_title(calling_ae_title).map_err(|p| bad(&format!("calling AE title: {p}")))?;
        let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("expected AET@HOST:PORT (no port)"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("expected AET@HOST:PORT with a port number 1-65535"));
        }
        Ok(Self {
            ae_title: aet.into(),
            address: address.into(),
            calling_ae_title: calling_ae_title.into(),
            timeout: Duration::from_secs(30),
        })
    }

    fn name(&self) -> String {
        format!("{}@{}", self.ae_title, self.address)
    }

    fn error(&self, problem: impl std::fmt::Display) -> DicomError {
        DicomError::Network { peer: self.name(), problem: problem.to_string() }
    }
}

/// An AE title: 1-16 characters of the default repertoire, no backslash or control characters (PS3.5 6.2).
fn check_ae_title(aet: &str) -> Result<(), String> {
    let t = aet.trim();
    if t.is_empty() || aet.len() > 16 || aet.chars().any(|c| c == '\\' || !(' '..='~').contains(&c)) {
        return Err(format!("AE title {aet:?} must be 1-16 printable ASCII characters without a backslash"));
    }
    Ok(())
}

/// The outcome of storing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The file.
    pub path: PathBuf,
    /// Its SOP Instance UID.
    pub sop_instance_uid: String,
    /// The C-STORE response status (0 = success), or `None` when it could not be sent.
    pub status: Option<u16>,
    /// A one-line description.
    pub message: String,
}

impl StoreOutcome {
    /// Whether the peer stored the object (status 0000H, or a warning B000H-BFFFH / 0107H / 0116H).
    pub fn stored(&self) -> bool {
        matches!(self.status, Some(0 | 0x0107 | 0x0116 | 0xB000..=0xBFFF))
    }
}

/// The DICOM files of `dir` (regular files ending `.dcm`, sorted by name).
pub fn dicom_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DicomError::io(dir, "read", e))?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| DicomError::io(dir, "read", e))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("dcm")) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DicomError::input(dir, "no .dcm files"));
    }
    Ok(files)
}

fn connect(peer: &Peer, sop_classes: &[String]) -> Result<ClientAssociation<std::net::TcpStream>> {
    let ts = vec![uids::EXPLICIT_VR_LITTLE_ENDIAN, uids::IMPLICIT_VR_LITTLE_ENDIAN];
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(peer.calling_ae_title.clone())
        .called_ae_title(peer.ae_title.clone())
        .with_presentation_context(uids::VERIFICATION, ts.clone())
        .connection_timeout(peer.timeout)
        .read_timeout(peer.timeout)
        .write_timeout(peer.timeout);
    for class in sop_classes {
        options = options.with_presentation_context(class.as_str(), ts.clone());
    }
    options.establish(peer.address.as_str()).map_err(|e| peer.error(format!("association failed: {}", chain(&e))))
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s
}

fn command(elements: Vec<DataElement<InMemDicomObject>>) -> Result<Vec<u8>> {
    let obj = InMemDicomObject::command_from_element_iter(elements);
    let mut data = Vec::new();
    obj.write_dataset_with_ts(&mut data, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| DicomError::encode("DIMSE command", e))?;
    Ok(data)
}

fn us(tag: dicom_core::Tag, v: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

/// Receives one DIMSE response command and returns its Status.
fn response_status(scu: &mut ClientAssociation<std::net::TcpStream>, peer: &Peer) -> Result<u16> {
    let mut bytes = Vec::new();
    loop {
        match scu.receive().map_err(|e| peer.error(format!("no response: {}", chain(&e))))? {
            Pdu::PData { data } => {
                let mut last = false;
                for v in data {
                    if v.value_type == PDataValueType::Command {
                        last |= v.is_last;
                        bytes.extend(v.data);
                    }
                }
                if last {
                    break;
                }
            }
            Pdu::AbortRQ { source } => return Err(peer.error(format!("aborted the association: {source:?}"))),
            other => return Err(peer.error(format!("unexpected {}", other.short_description()))),
        }
    }
    let obj = InMemDicomObject::read_dataset_with_ts(bytes.as_slice(), &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| peer.error(format!("unreadable response: {e}")))?;
    obj.element(tags::STATUS)
        .ok()
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or_else(|| peer.error("response without a Status (0000,0900)"))
}

fn echo(scu: &mut ClientAssociation<std::net::TcpStream>, peer: &Peer) -> Result<()> {
    let pc = scu
        .presentation_contexts()
        .iter()
        .find(|pc| pc.abstract_syntax == uids::VERIFICATION && pc.reason == PresentationContextResultReason::Acceptance)
        .ok_or_else(|| peer.error("refused the Verification SOP class (C-ECHO)"))?
        .id;
    let data = command(vec![
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, PrimitiveValue::from(uids::VERIFICATION)),
        us(tags::COMMAND_FIELD, 0x0030),
        us(tags::MESSAGE_ID, 1),
        us(tags::COMMAND_DATA_SET_TYPE, 0x0101),
    ])?;
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Command,
            is_last: true,
            data,
        }],
    };
    scu.send(&pdu).map_err(|e| peer.error(format!("sending C-ECHO: {}", chain(&e))))?;
    match response_status(scu, peer)? {
        0 => Ok(()),
        s => Err(peer.error(format!("C-ECHO failed with status {s:04X}H"))),
    }
}

/// A writer that retries a `write` which accepted nothing. dicom-ul 0.10's `PDataWriter::write` returns
/// `Ok(0)` when its PDU buffer is exactly full (it sends the PDU and takes no bytes), which `write_all` reports
/// as "failed to write whole buffer" when the data set is written in small pieces; the next call makes progress.
struct Progressing<W>(W);

impl<W: std::io::Write> std::io::Write for Progressing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for _ in 0..2 {
            let n = self.0.write(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
        Ok(0)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn store_one(
    scu: &mut ClientAssociation<std::net::TcpStream>,
    peer: &Peer,
    path: &Path,
    message_id: u16,
) -> Result<StoreOutcome> {
    let file =
        dicom_object::open_file(path).map_err(|e| DicomError::Read { path: path.into(), problem: e.to_string() })?;
    let class = file.meta().media_storage_sop_class_uid().trim_end_matches('\0').to_string();
    let instance = file.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string();
    let outcome = |status: Option<u16>, message: String| StoreOutcome {
        path: path.into(),
        sop_instance_uid: instance.clone(),
        status,
        message,
    };
    let Some(pc) = scu
        .presentation_contexts()
        .iter()
        .find(|pc| pc.abstract_syntax == class && pc.reason == PresentationContextResultReason::Acceptance)
        .cloned()
    else {
        return Ok(outcome(None, format!("the peer refused SOP class {class}")));
    };
    let ts = TransferSyntaxRegistry
        .get(pc.transfer_syntax.trim_end_matches('\0'))
        .ok_or_else(|| peer.error(format!("accepted unknown transfer syntax {}", pc.transfer_syntax)))?;
    let data = command(vec![
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, PrimitiveValue::from(class.as_str())),
        us(tags::COMMAND_FIELD, 0x0001),
        us(tags::MESSAGE_ID, message_id),
        us(tags::PRIORITY, 0),
        us(tags::COMMAND_DATA_SET_TYPE, 0x0000),
        DataElement::new(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(instance.as_str())),
    ])?;
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc.id,
            value_type: PDataValueType::Command,
            is_last: true,
            data,
        }],
    };
    scu.send(&pdu).map_err(|e| peer.error(format!("sending C-STORE: {}", chain(&e))))?;
    {
        let mut writer = scu.send_pdata(pc.id);
        let sent = file.write_dataset_with_ts(&mut Progressing(&mut writer), ts);
        if let Err(e) = sent {
            // Never let the writer's drop emit a truncated "last" fragment the peer would store.
            writer.abandon();
            return Err(peer.error(format!("sending {}: {}", path.display(), chain(&e))));
        }
        writer.finish().map_err(|e| peer.error(format!("sending {}: {e}", path.display())))?;
    }
    let status = response_status(scu, peer)?;
    let message = match status {
        0 => "stored".to_string(),
        s @ (0x0107 | 0x0116 | 0xB000..=0xBFFF) => format!("stored with warning {s:04X}H"),
        s => format!("failed with status {s:04X}H"),
    };
    Ok(outcome(Some(status), message))
}

/// C-ECHO, then C-STORE of every file in `files`; `report` is called once per file as it completes. Returns
/// every outcome; an error only when the association itself fails (refused, closed, timed out).
pub fn send(peer: &Peer, files: &[PathBuf], mut report: impl FnMut(&StoreOutcome)) -> Result<Vec<StoreOutcome>> {
    let mut classes = Vec::new();
    for path in files {
        let file = dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| DicomError::Read { path: path.clone(), problem: e.to_string() })?;
        let class = file.meta().media_storage_sop_class_uid().trim_end_matches('\0').to_string();
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    let mut scu = connect(peer, &classes)?;
    echo(&mut scu, peer)?;
    let mut outcomes = Vec::new();
    for (k, path) in files.iter().enumerate() {
        let o = store_one(&mut scu, peer, path, (k + 2) as u16)?;
        report(&o);
        outcomes.push(o);
    }
    scu.release().map_err(|e| peer.error(format!("release: {}", chain(&e))))?;
    Ok(outcomes)
}

/// C-ECHO alone.
pub fn echo_peer(peer: &Peer) -> Result<()> {
    let mut scu = connect(peer, &[])?;
    echo(&mut scu, peer)?;
    scu.release().map_err(|e| peer.error(format!("release: {}", chain(&e))))
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn peer_specs_are_parsed_or_refused_by_name() {
        let p = Peer::parse("STORESCP@127.0.0.1:11112", "TOMOLAB").unwrap();
        assert_eq!((p.ae_title.as_str(), p.address.as_str()), ("STORESCP", "127.0.0.1:11112"));
        for bad in ["127.0.0.1:104", "A@host", "A@host:notaport", "@host:104", "WAY_TOO_LONG_AE_TITLE@h:1", "A\\B@h:1"]
        {
            let e = Peer::parse(bad, "TOMOLAB").unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("AE"), "{bad}: {e}");
        }
    }
}
