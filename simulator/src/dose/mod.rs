//! Mean glandular dose (MGD).
//!
//! - [`standard`]: Dance's homogeneous model breast, voxelised, and its Monte Carlo dose per view.
//! - [`phantom`]: the Monte Carlo dose of every view of an exam on the actual voxel phantom (the report).
//! - [`formalism`]: `MGD = K g c s t` from the tables in `data/dose/` (fast; no transport).
//! - [`budget`]: the sequencer's dose model: the formalism, with the model-breast Monte Carlo where the
//!   tables do not reach.
//! - [`beam`]: the spectrum, field, incident air kerma and HVL of a view, shared by all of them.
//!
//! All doses are per mAs; multiply by the delivered mAs. The glandular dose of a homogeneous mixture is the
//! energy it absorbs weighted by `(mu_en/rho)_glandular / (mu_en/rho)_mixture` (see [`crate::mc`]).

pub mod beam;
pub mod budget;
pub mod formalism;
pub mod phantom;
pub mod standard;

pub use beam::ViewBeam;
pub use budget::BudgetDose;
pub use formalism::{ConversionTables, Formalism, FormalismView};
pub use phantom::{PhantomDose, PhantomDoseConfig, PhantomViewDose};
pub use standard::{MGY_PER_KEV_PER_G, StandardBreast, StandardViewDose, standard_view_dose};
