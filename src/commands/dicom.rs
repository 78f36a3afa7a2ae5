//! `tomolab dicom export|send`: an exam to DICOM files, and DICOM files to a PACS (C-ECHO + C-STORE).

use std::path::PathBuf;

use anyhow::Context;
use tomolab_dicom::net::{Peer, StoreOutcome};
use tomolab_dicom::{ExportOptions, Laterality};

/// Arguments of `tomolab dicom`.
#[derive(Debug, clap::Args)]
pub struct DicomArgs {
    #[command(subcommand)]
    command: DicomCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DicomCommand {
    /// Export an exam output directory (tomolab exam --out DIR) as DICOM: projections For Processing, the
    /// Breast Tomosynthesis Image, the 2D image For Presentation.
    Export(ExportArgs),
    /// C-ECHO, then C-STORE every .dcm file of DIR to AET@HOST:PORT; one status line per object.
    Send(SendArgs),
}

/// Identifiers written into the exported objects (anonymous defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// Patient's Name.
    #[arg(long, default_value = "ANONYMOUS^TOMOLAB")]
    patient_name: String,
    /// Patient ID.
    #[arg(long, default_value = "TOMOLAB")]
    patient_id: String,
    /// Accession Number.
    #[arg(long, default_value = "")]
    accession_number: String,
    /// Which breast: L or R.
    #[arg(long, default_value = "L")]
    laterality: Laterality,
}

impl IdentityArgs {
    /// The export options these identifiers give.
    pub fn options(&self) -> ExportOptions {
        ExportOptions {
            patient_name: self.patient_name.clone(),
            patient_id: self.patient_id.clone(),
            accession_number: self.accession_number.clone(),
            laterality: self.laterality,
            ..ExportOptions::default()
        }
    }
}

impl Default for IdentityArgs {
    fn default() -> Self {
        let d = ExportOptions::default();
        Self {
            patient_name: d.patient_name,
            patient_id: d.patient_id,
            accession_number: d.accession_number,
            laterality: d.laterality,
        }
    }
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The exam directory.
    exam: PathBuf,
    /// Output directory: new or empty (written to a temporary directory beside it and renamed at the end).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    identity: IdentityArgs,
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// Directory of .dcm files (for example a `tomolab dicom export` output).
    dir: PathBuf,
    /// The receiver: AET@HOST:PORT.
    #[arg(long)]
    to: String,
    /// Our AE title.
    #[arg(long, default_value = "TOMOLAB")]
    calling_ae: String,
    /// Connection and response timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout_s: f64,
}

/// Runs `tomolab dicom ...`.
pub fn run(args: &DicomArgs) -> anyhow::Result<()> {
    match &args.command {
        DicomCommand::Export(a) => {
            let report = tomolab_dicom::export_exam(&a.exam, &a.out, &a.identity.options())
                .with_context(|| format!("exporting {} to DICOM", a.exam.display()))?;
            println!(
                "wrote {} DICOM objects to {} (study {})",
                report.files.len(),
                report.dir.display(),
                report.study_uid
            );
            Ok(())
        }
        DicomCommand::Send(a) => send(&a.dir, &a.to, &a.calling_ae, a.timeout_s),
    }
}

/// Sends every .dcm file of `dir` to `to`; an error if the association fails or any object is not stored.
pub fn send(dir: &std::path::Path, to: &str, calling_ae: &str, timeout_s: f64) -> anyhow::Result<()> {
    let usage = |e: tomolab_dicom::DicomError| anyhow::Error::new(super::UsageError(e.to_string()));
    let mut peer = Peer::parse(to, calling_ae).map_err(usage)?;
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        return Err(anyhow::Error::new(super::UsageError(format!("--timeout-s must be positive, got {timeout_s}"))));
    }
    peer.timeout = std::time::Duration::from_secs_f64(timeout_s);
    let files = tomolab_dicom::net::dicom_files(dir)?;
    let print = |o: &StoreOutcome| {
        let status = o.status.map_or("----".to_string(), |s| format!("{s:04X}"));
        println!("{status} {} {}: {}", o.path.display(), o.sop_instance_uid, o.message);
    };
    let outcomes = tomolab_dicom::net::send(&peer, &files, print)?;
    let failed = outcomes.iter().filter(|o| !o.stored()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} objects were not stored by {to}", outcomes.len());
    }
    println!("stored {} objects at {to}", outcomes.len());
    Ok(())
}
