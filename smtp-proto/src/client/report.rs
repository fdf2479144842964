//! The report that ends every message: its outcome, and each recipient's.

use alloc::vec::Vec;

use crate::error::Error;
use crate::event::{Failure, MessageReport, Outcome, RecipientResult, RecipientStatus};
use crate::reply::Reply;

use super::transaction::{Phase, Replies, Txn};

impl Txn {
    /// Builds the report; `session` is the error that ended the session, if one did. The emptied list of RCPT
    /// replies goes to `spares`, for a next message.
    pub(super) fn conclude(
        self,
        session: Option<&Error>,
        spares: &mut Vec<Vec<Option<Reply>>>,
    ) -> MessageReport {
        let (failure, unknown) = match self.phase {
            Phase::Decided { failure, .. } => (failure, false),
            // The end of data left and its reply never came: it may have been delivered.
            Phase::Ending { handed_out } => (None, handed_out && session.is_some()),
            Phase::Queued | Phase::Envelope { .. } | Phase::Body(_) => (None, false),
        };
        let failure = failure.or_else(|| session.map(|e| Failure::Session(e.clone())));
        let mut replies = self.replies;
        let lmtp = !replies.lmtp.is_empty();
        let lmtp_any = replies.lmtp.iter().flatten().any(Reply::is_positive);
        let outcome = match (unknown, lmtp_any, &failure) {
            (_, true, _) | (false, _, None) => Outcome::Sent,
            (true, false, _) => Outcome::Unknown,
            (false, false, Some(_)) => Outcome::Rejected,
        };
        let whole = whole_status(failure.as_ref(), outcome, &replies);
        // After a refused MAIL the RCPT replies only echo it (503 "need MAIL"): the MAIL reply decides.
        let mail_refused = failure == Some(Failure::MailRejected);
        let mut lmtp_replies = replies.lmtp.into_iter();
        // The paths are shared with the caller's envelope: cloning one is no allocation.
        let recipients = self.env.recipients().iter().zip(replies.rcpt.drain(..));
        let recipients = recipients
            .map(|(r, rcpt_reply)| {
                let lmtp_reply = lmtp.then(|| lmtp_replies.next().flatten()).flatten();
                let status = match &rcpt_reply {
                    _ if mail_refused => whole,
                    Some(rr) if !rr.is_positive() => class_status(Some(rr)),
                    Some(_) if lmtp => lmtp_status(lmtp_reply.as_ref(), unknown),
                    Some(_) => whole,
                    None => never_answered(whole),
                };
                RecipientResult { path: r.path().clone(), rcpt_reply, lmtp_reply, status, reply: None }
            })
            .collect::<Vec<_>>();
        let outcome = if lmtp { lmtp_outcome(outcome, &recipients) } else { outcome };
        // A few suffice: as many as there are messages in flight at once.
        if spares.len() < 4 {
            spares.push(replies.rcpt);
        }
        let mut report = MessageReport {
            id: self.id,
            outcome,
            failure: failure.filter(|_| outcome != Outcome::Sent),
            recipients,
            mail_reply: replies.mail,
            data_reply: replies.data,
            final_reply: replies.end,
            warnings: self.warnings,
        };
        for i in 0..report.recipients.len() {
            let reply = report.deciding_reply(&report.recipients[i]).cloned();
            report.recipients[i].reply = reply;
        }
        report
    }
}

/// A recipient whose RCPT was never answered was never delivered, whatever happened to the message.
fn never_answered(whole: RecipientStatus) -> RecipientStatus {
    match whole {
        RecipientStatus::Unknown | RecipientStatus::Delivered => RecipientStatus::TemporaryFailure,
        s => s,
    }
}

/// What the recipients the server accepted got, from the message's outcome.
fn whole_status(failure: Option<&Failure>, outcome: Outcome, replies: &Replies) -> RecipientStatus {
    match (failure, outcome) {
        (_, Outcome::Sent) => RecipientStatus::Delivered,
        (_, Outcome::Unknown) => RecipientStatus::Unknown,
        (Some(Failure::Unsendable(_)), _) => RecipientStatus::PermanentFailure,
        (Some(Failure::Session(_)) | None, _) => RecipientStatus::TemporaryFailure,
        (Some(Failure::MailRejected), _) => class_status(replies.mail.as_ref()),
        (Some(Failure::DataRejected), _) => class_status(replies.data.as_ref()),
        (Some(_), _) => class_status(replies.end.as_ref()),
    }
}

/// In LMTP every accepted recipient has its own reply after the body (RFC 2033 §4.2): a session that ended
/// after the end of data leaves the message unknown only while one of them has none (a 421 as the last
/// reply answers that recipient, then closes).
fn lmtp_outcome(outcome: Outcome, recipients: &[RecipientResult]) -> Outcome {
    match outcome {
        Outcome::Unknown if recipients.iter().all(|r| r.status != RecipientStatus::Unknown) => {
            Outcome::Rejected
        }
        o => o,
    }
}

/// An LMTP recipient the server accepted: its own reply after the body decides.
fn lmtp_status(reply: Option<&Reply>, unknown: bool) -> RecipientStatus {
    match reply {
        Some(r) if r.is_positive() => RecipientStatus::Delivered,
        Some(r) => class_status(Some(r)),
        None if unknown => RecipientStatus::Unknown,
        None => RecipientStatus::TemporaryFailure,
    }
}

fn class_status(reply: Option<&Reply>) -> RecipientStatus {
    match reply {
        Some(r) if r.is_permanent() => RecipientStatus::PermanentFailure,
        _ => RecipientStatus::TemporaryFailure,
    }
}
