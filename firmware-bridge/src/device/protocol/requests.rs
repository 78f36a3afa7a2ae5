//! What each serial request means: planned into a backend job or answered from the protocol's own state,
//! and a job's outcome applied (technique loaded, exposure held, frame kept for RESEND_FRAME).

use tomolab_hal::{ErrorKind, ExposureRequest, Frame};

use super::{Answer, DeviceProtocol, same_request, wire_answer};
use crate::device::backend::{Job, Outcome};
use crate::error::kind_code;
use crate::protocol::frames::{FrameKind, FrameMessage, data_crc};
use crate::protocol::message::{
    ExposureOutcome, FrameReady, Request, code, encode_error, encode_geometry, encode_interlocks, encode_record,
    error_code,
};

impl DeviceProtocol {
    /// What a request of the open session takes: a backend job, or an answer without one.
    pub(super) fn plan(&mut self, request: &Request) -> Result<Job, Answer> {
        let error = |c: u8, m: &str| (code::ERROR, encode_error(c, m));
        match request {
            Request::Hello { .. } => Err((code::OK, Vec::new())),
            Request::SetTechnique(t) => {
                if let Err(m) = self.config.limits.check_technique(t) {
                    return Err(error(error_code::TECHNIQUE_LIMIT, &format!("set technique: {m}")));
                }
                self.technique = None;
                Ok(Job::SetTechnique(*t))
            }
            Request::Prepare => Ok(Job::Prepare),
            Request::Expose { session, id, request } => self.plan_expose(*session, *id, request),
            Request::QueryExposure { session, id } => Err(self.query_exposure(*session, *id)),
            Request::Disable => {
                // A stale exposure id never answers OK after DISABLE: the held record is dropped (the ids stay
                // used).
                self.exposures.last = None;
                Ok(Job::Disable)
            }
            Request::Interlocks => Ok(Job::Interlocks),
            Request::DetectorGeometry => Ok(Job::DetectorGeometry),
            Request::Arm => Ok(Job::Arm),
            Request::Disarm => Ok(Job::Disarm),
            Request::ReadFrame => Ok(Job::ReadFrame),
            Request::FloodFrame => Ok(Job::FloodFrame),
            Request::ResendFrame { seq } => Err(self.resend_frame(*seq)),
        }
    }

    fn query_exposure(&self, session: u32, id: u32) -> Answer {
        if Some(session) != self.session {
            return (code::ERROR, encode_error(error_code::STALE_SESSION, "query exposure: not this session's id"));
        }
        let ex = &self.exposures;
        let outcome = match &ex.last {
            Some((last, _, outcome)) if *last == id => outcome.encode(),
            _ if ex.highest.is_some_and(|h| id <= h) => ExposureOutcome::Failed(
                error_code::EXPOSURE_ID_REUSED,
                format!("exposure {id} is no longer held (superseded or disabled)"),
            )
            .encode(),
            _ => ExposureOutcome::Unknown.encode(),
        };
        (code::OK, outcome)
    }

    fn resend_frame(&mut self, seq: u64) -> Answer {
        match self.recent.iter().find(|m| m.seq == seq) {
            Some(m) => {
                let m = m.clone();
                let ready = frame_ready(&m);
                self.outbox.push(m);
                (code::OK, ready.encode())
            }
            None => (code::ERROR, encode_error(kind_code(ErrorKind::NotReady), "frame no longer held")),
        }
    }

    /// EXPOSE: fires at most once per (session, id), and only within the generator's limits (here) and the
    /// compression window (checked by the backend half right before the beam).
    fn plan_expose(&mut self, session: u32, id: u32, request: &ExposureRequest) -> Result<Job, Answer> {
        let error = |c: u8, m: &str| (code::ERROR, encode_error(c, m));
        if Some(session) != self.session {
            return Err(error(error_code::STALE_SESSION, "expose: not this session's id; no beam"));
        }
        if let Some((last, held, outcome)) = &self.exposures.last
            && *last == id
        {
            if !same_request(held, request) {
                let m = format!("expose: exposure id {id} already used with another request; no beam");
                return Err(error(error_code::EXPOSURE_ID_REUSED, &m));
            }
            // The retry of the last exposure: its record, never a second beam.
            return Err(match outcome {
                ExposureOutcome::Done(r) => (code::OK, encode_record(r)),
                ExposureOutcome::Failed(c, m) => error(*c, m),
                ExposureOutcome::Unknown => error(kind_code(ErrorKind::Other), "unknown"),
            });
        }
        if let Some(h) = self.exposures.highest
            && id <= h
        {
            let m = format!("expose: exposure id {id} already used in this session (last {h}); no beam");
            return Err(error(error_code::EXPOSURE_ID_REUSED, &m));
        }
        self.exposures.highest = Some(id);
        if let Err(m) = self.config.limits.check_request(request, self.technique.as_ref()) {
            let m = format!("expose: {m}; no beam");
            self.exposures.last = Some((id, *request, ExposureOutcome::Failed(error_code::TECHNIQUE_LIMIT, m.clone())));
            return Err(error(error_code::TECHNIQUE_LIMIT, &m));
        }
        Ok(Job::Expose { request: *request, window: self.config.compression_window_n })
    }

    /// Applies a serial job's outcome; the answer.
    pub(super) fn apply(&mut self, request: &Request, outcome: Outcome) -> Answer {
        let mismatch = Err((kind_code(ErrorKind::Other), "internal: job and outcome do not match".to_string()));
        let result = match (request, outcome) {
            (Request::SetTechnique(t), Outcome::Done(r)) => r.map(|()| {
                self.technique = Some(*t);
                Vec::new()
            }),
            (Request::Expose { session, id, request }, Outcome::Exposed { fired, result }) => {
                if fired {
                    self.stats.exposures_fired += 1;
                    self.fired.push((*session, *id));
                }
                let held = match &result {
                    Ok(r) => ExposureOutcome::Done(*r),
                    Err((c, m)) => ExposureOutcome::Failed(*c, m.clone()),
                };
                if Some(*session) == self.session {
                    self.exposures.last = Some((*id, *request, held));
                }
                result.map(|r| encode_record(&r))
            }
            (Request::Interlocks, Outcome::Interlocks(r)) => {
                let open = self.session.is_some();
                r.map(|mut s| {
                    s.link_alive &= open;
                    encode_interlocks(&s)
                })
            }
            (Request::DetectorGeometry, Outcome::Geometry(g)) => Ok(encode_geometry(&g)),
            (Request::ReadFrame, Outcome::Frame(r)) => r.map(|f| self.push_frame(f, FrameKind::Readout)),
            (Request::FloodFrame, Outcome::Frame(r)) => r.map(|f| self.push_frame(f, FrameKind::Flood)),
            (_, Outcome::Done(r)) => r.map(|()| Vec::new()),
            _ => mismatch,
        };
        wire_answer(result)
    }

    fn push_frame(&mut self, frame: Frame, kind: FrameKind) -> Vec<u8> {
        self.frame_seq += 1;
        let msg = FrameMessage {
            seq: self.frame_seq,
            view: u32::try_from(self.stats.exposures_fired).unwrap_or(u32::MAX),
            kind,
            timestamp: self.now,
            frame,
        };
        let ready = frame_ready(&msg);
        self.recent.push_back(msg.clone());
        while self.recent.len() > self.config.frame_history {
            self.recent.pop_front();
        }
        self.outbox.push(msg);
        ready.encode()
    }
}

/// Requests answered without the backend (deferred only behind serial work).
pub(super) fn is_local(r: &Request) -> bool {
    matches!(r, Request::QueryExposure { .. } | Request::ResendFrame { .. })
}

fn frame_ready(m: &FrameMessage) -> FrameReady {
    FrameReady {
        seq: m.seq,
        cols: u32::try_from(m.frame.cols).unwrap_or(u32::MAX),
        rows: u32::try_from(m.frame.rows).unwrap_or(u32::MAX),
        data_crc: data_crc(&m.frame),
    }
}
