//! A message sent in as many transactions as its recipients need (RFC 5321 §4.5.3.1.10): at most the
//! server's `LIMITS RCPTMAX` (RFC 9422) in each, and the recipients a server turned away as too many (452, or
//! 552 with X.5.3) again in the next one. One report for the whole message.

use smtp_proto::{
    Envelope, Failure, MessageId, MessageReport, Outcome, RecipientResult, RecipientStatus, Warning,
};

use crate::driver::Slot;

/// A message handed to the driver.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) slot: Slot,
    envelope: Envelope,
    /// Whether the body can be read again from its start.
    replayable: bool,
    /// Recipients (indices into the envelope) not yet sent, in order.
    todo: Vec<usize>,
    /// The transaction in flight: the core's id and the recipients it carries.
    pub(crate) part: Option<(MessageId, Vec<usize>)>,
    /// Each recipient's result so far.
    results: Vec<Option<RecipientResult>>,
    /// The report the merged one takes its message-level fields from.
    base: Option<MessageReport>,
    /// A transaction already read the body: the next one starts by rewinding it.
    pub(crate) body_used: bool,
    /// The message went again on a fresh connection, after this: its report says so.
    retried: Option<Warning>,
}

impl Message {
    pub(crate) fn new(slot: Slot, envelope: Envelope, replayable: bool) -> Message {
        let n = envelope.recipients().len();
        Message {
            slot,
            envelope,
            replayable,
            todo: (0..n).collect(),
            part: None,
            results: vec![None; n],
            base: None,
            body_used: false,
            retried: None,
        }
    }

    /// The envelope of the next transaction, at most `rcpt_max` recipients (all of them when the body
    /// cannot be read again: the core then refuses the message as too big for the server), or `None` when
    /// every recipient has its result.
    pub(crate) fn next_part(&mut self, rcpt_max: Option<u32>) -> Option<(Envelope, Vec<usize>)> {
        if self.todo.is_empty() {
            return None;
        }
        let limit = match rcpt_max {
            Some(max) if self.replayable => (max as usize).max(1),
            _ => self.todo.len(),
        };
        let taken: Vec<usize> = self.todo.drain(..limit.min(self.todo.len())).collect();
        let recipients = taken.iter().map(|&i| self.envelope.recipients()[i].clone());
        let envelope = self.envelope.with_recipients(recipients).expect("at least one recipient");
        Some((envelope, taken))
    }

    /// Takes the report of the transaction in flight. Its recipients the server found too many go back to
    /// the front of the queue, when the body can be read again and the transaction got somewhere (at least
    /// one recipient accepted): a server that takes nobody would refuse them again.
    ///
    /// With `retry_unsent`, a transaction whose connection died before its end of data goes again, once, on
    /// the next connection: it was not sent ([`crate::pool::worth_retrying`]).
    pub(crate) fn part_done(&mut self, report: MessageReport, retry_unsent: bool) {
        let Some((_, indices)) = self.part.take() else { return };
        if retry_unsent && self.replayable && self.retried.is_none() && crate::pool::worth_retrying(&report) {
            let (failure, reply) = (report.failure.clone(), report.reply().cloned());
            let failure = failure.unwrap_or(Failure::Session(smtp_proto::Error::UnexpectedEof));
            self.retried = Some(Warning::SentAgain { failure, reply });
            for (&i, result) in indices.iter().zip(&report.recipients) {
                // Their result if the next connection never comes.
                self.results[i] = Some(result.clone());
            }
            self.put_back(indices);
            self.base.get_or_insert(report);
            return;
        }
        let progress = report.recipients.iter().any(|r| r.status == RecipientStatus::Delivered);
        let mut retry = Vec::new();
        for (&i, result) in indices.iter().zip(&report.recipients) {
            if result.turned_away_as_too_many() && progress && self.replayable {
                retry.push(i);
            }
            self.results[i] = Some(result.clone());
        }
        retry.append(&mut self.todo);
        self.todo = retry;
        let delivered = report.outcome == Outcome::Sent;
        if self.base.is_none() || (delivered && self.base.as_ref().is_some_and(|b| !sent(b))) {
            self.base = Some(report);
        }
    }

    /// Recipients of a transaction that could not start go back to the front of the queue.
    pub(crate) fn put_back(&mut self, mut indices: Vec<usize>) {
        indices.append(&mut self.todo);
        self.todo = indices;
    }

    /// Recipients wait for a transaction, and none is in flight.
    pub(crate) fn waiting(&self) -> bool {
        self.part.is_none() && !self.todo.is_empty()
    }

    /// Gives the recipients not yet sent a result: none of their transactions could start (a recipient whose
    /// transaction failed before keeps that result).
    pub(crate) fn abandon(&mut self, failure: Failure) {
        for i in self.todo.drain(..) {
            if self.results[i].is_some() {
                continue;
            }
            let path = self.envelope.recipients()[i].path().clone();
            let status = match &failure {
                Failure::Unsendable(_) => RecipientStatus::PermanentFailure,
                _ => RecipientStatus::TemporaryFailure,
            };
            let r = RecipientResult { path, rcpt_reply: None, lmtp_reply: None, status, reply: None };
            self.results[i] = Some(r);
        }
        if self.base.is_none() {
            self.base = Some(MessageReport {
                id: MessageId::UNSENT,
                outcome: Outcome::Rejected,
                failure: Some(failure),
                recipients: Vec::new(),
                mail_reply: None,
                data_reply: None,
                final_reply: None,
                warnings: Vec::new(),
            });
        }
    }

    /// The report for the whole message (a recipient never sent gets a temporary failure).
    pub(crate) fn finish(mut self) -> MessageReport {
        if !self.todo.is_empty() || self.part.is_some() {
            self.part = None;
            self.abandon(Failure::Session(smtp_proto::Error::Aborted));
        }
        let mut report = self.base.take().expect("a base once every recipient has a result");
        report.recipients =
            self.results.into_iter().map(|r| r.expect("every recipient has a result")).collect();
        let status = |s| report.recipients.iter().any(|r| r.status == s);
        report.outcome = if status(RecipientStatus::Delivered) {
            Outcome::Sent
        } else if status(RecipientStatus::Unknown) {
            Outcome::Unknown
        } else {
            Outcome::Rejected
        };
        report.warnings.extend(self.retried);
        if report.outcome == Outcome::Sent {
            report.failure = None;
        } else if report.failure.is_none() {
            // The base delivered nobody and another part did not change that.
            report.failure = Some(Failure::NoRecipientAccepted);
        }
        report
    }
}

fn sent(report: &MessageReport) -> bool {
    report.outcome == Outcome::Sent
}
