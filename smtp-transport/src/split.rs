//! A message sent in as many transactions as its recipients need (RFC 5321 §4.5.3.1.10): at most the
//! server's `LIMITS RCPTMAX` (RFC 9422) in each, and the recipients a server turned away as too many (452, or
//! 552 with X.5.3) again in the next one. One report for the whole message.

use smtp_proto::{
    Envelope, Failure, MessageId, MessageReport, Outcome, RecipientResult, RecipientStatus, Warning,
};

use std::ops::Range;

use crate::driver::Slot;

/// A message handed to the driver.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) slot: Slot,
    envelope: Envelope,
    /// Whether the body can be read again from its start.
    replayable: bool,
    /// Recipients (indices into the envelope) to send again, in order, before the `fresh` ones.
    todo: Vec<usize>,
    /// Recipients never tried yet: a run to the envelope's end (no list in the common case).
    fresh: Range<usize>,
    /// The transaction in flight: the core's id and the recipients it carries.
    pub(crate) part: Option<(MessageId, Part)>,
    /// Each recipient's result so far, once a report is merged from several (empty until then).
    results: Vec<Option<RecipientResult>>,
    /// The report the merged one takes its message-level fields from (the whole report when one
    /// transaction carried every recipient).
    base: Option<MessageReport>,
    /// A transaction already read the body: the next one starts by rewinding it.
    pub(crate) body_used: bool,
    /// The message went again on a fresh connection, after this: its report says so.
    retried: Option<Warning>,
}

/// The recipients of one transaction: a run of the envelope's (the common case: no list to allocate), or
/// the ones sent again.
#[derive(Debug)]
pub(crate) enum Part {
    Run(Range<usize>),
    List(Vec<usize>),
}

impl Part {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (run, list) = match self {
            Part::Run(r) => (r.clone(), &[][..]),
            Part::List(l) => (0..0, &l[..]),
        };
        run.chain(list.iter().copied())
    }

    fn into_vec(self) -> Vec<usize> {
        match self {
            Part::Run(r) => r.collect(),
            Part::List(l) => l,
        }
    }
}

impl Message {
    pub(crate) fn new(slot: Slot, envelope: Envelope, replayable: bool) -> Message {
        let n = envelope.recipients().len();
        Message {
            slot,
            envelope,
            replayable,
            todo: Vec::new(),
            fresh: 0..n,
            part: None,
            results: Vec::new(),
            base: None,
            body_used: false,
            retried: None,
        }
    }

    /// The envelope of the next transaction, at most `rcpt_max` recipients (all of them when the body
    /// cannot be read again: the core then refuses the message as too big for the server), or `None` when
    /// every recipient has its result. Recipients to send again go first.
    pub(crate) fn next_part(&mut self, rcpt_max: Option<u32>) -> Option<(Envelope, Part)> {
        let left = self.todo.len() + self.fresh.len();
        if left == 0 {
            return None;
        }
        let limit = match rcpt_max {
            Some(max) if self.replayable => (max as usize).max(1),
            _ => left,
        };
        let part = if self.todo.is_empty() {
            let end = self.fresh.end.min(self.fresh.start + limit);
            let run = self.fresh.start..end;
            self.fresh.start = end;
            Part::Run(run)
        } else {
            let mut list: Vec<usize> = self.todo.drain(..limit.min(self.todo.len())).collect();
            while list.len() < limit && !self.fresh.is_empty() {
                list.extend(self.fresh.next());
            }
            Part::List(list)
        };
        if matches!(&part, Part::Run(r) if r.len() == self.envelope.recipients().len()) {
            // Every recipient in one transaction: the envelope's copy shares its recipient list.
            return Some((self.envelope.clone(), part));
        }
        let recipients = part.iter().map(|i| self.envelope.recipients()[i].clone());
        let envelope = self.envelope.with_recipients(recipients).expect("at least one recipient");
        Some((envelope, part))
    }

    /// Takes the report of the transaction in flight. Its recipients the server found too many go back to
    /// the front of the queue, when the body can be read again and the transaction got somewhere (at least
    /// one recipient accepted): a server that takes nobody would refuse them again.
    ///
    /// With `retry_unsent`, a transaction whose connection died before its end of data goes again, once, on
    /// the next connection: it was not sent ([`crate::pool::worth_retrying`]).
    pub(crate) fn part_done(&mut self, report: MessageReport, retry_unsent: bool) {
        let Some((_, part)) = self.part.take() else { return };
        if retry_unsent && self.replayable && self.retried.is_none() && crate::pool::worth_retrying(&report) {
            let (failure, reply) = (report.failure.clone(), report.reply().cloned());
            let failure = failure.unwrap_or(Failure::Session(smtp_proto::Error::UnexpectedEof));
            self.retried = Some(Warning::SentAgain { failure, reply });
            self.record(&part, &report);
            self.put_back(part);
            self.base.get_or_insert(report);
            return;
        }
        let progress = report.recipients.iter().any(|r| r.status == RecipientStatus::Delivered);
        let again = |(i, r): (usize, &RecipientResult)| {
            (r.turned_away_as_too_many() && progress && self.replayable).then_some(i)
        };
        let mut retry: Vec<usize> = part.iter().zip(&report.recipients).filter_map(again).collect();
        let whole = matches!(&part, Part::Run(r) if r.len() == self.envelope.recipients().len());
        if whole && retry.is_empty() {
            // The one transaction of the whole message: its report is the message's.
            self.base = Some(report);
            return;
        }
        self.record(&part, &report);
        retry.append(&mut self.todo);
        self.todo = retry;
        let delivered = report.outcome == Outcome::Sent;
        if self.base.is_none() || (delivered && self.base.as_ref().is_some_and(|b| !sent(b))) {
            self.base = Some(report);
        }
    }

    /// Keeps the results of `part`'s recipients from its report, for the merged one.
    fn record(&mut self, part: &Part, report: &MessageReport) {
        if self.results.is_empty() {
            self.results = vec![None; self.envelope.recipients().len()];
        }
        for (i, result) in part.iter().zip(&report.recipients) {
            self.results[i] = Some(result.clone());
        }
    }

    /// Recipients of a transaction that could not start go back to the front of the queue.
    pub(crate) fn put_back(&mut self, part: Part) {
        let mut indices = part.into_vec();
        indices.append(&mut self.todo);
        self.todo = indices;
    }

    /// Recipients wait for a transaction, and none is in flight.
    pub(crate) fn waiting(&self) -> bool {
        self.part.is_none() && !(self.todo.is_empty() && self.fresh.is_empty())
    }

    /// Gives the recipients not yet sent a result: none of their transactions could start (a recipient whose
    /// transaction failed before keeps that result).
    pub(crate) fn abandon(&mut self, failure: Failure) {
        if self.results.is_empty() {
            self.results = vec![None; self.envelope.recipients().len()];
        }
        let status = match &failure {
            Failure::Unsendable(_) => RecipientStatus::PermanentFailure,
            _ => RecipientStatus::TemporaryFailure,
        };
        for i in self.todo.drain(..).chain(std::mem::replace(&mut self.fresh, 0..0)) {
            if self.results[i].is_some() {
                continue;
            }
            let path = self.envelope.recipients()[i].path().clone();
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
        if let Some((_, part)) = self.part.take() {
            self.put_back(part);
        }
        if !(self.todo.is_empty() && self.fresh.is_empty()) {
            self.abandon(Failure::Session(smtp_proto::Error::Aborted));
        }
        let mut report = self.base.take().expect("a base once every recipient has a result");
        report.warnings.extend(self.retried);
        if self.results.is_empty() {
            // One transaction carried every recipient: its report is the message's.
            return report;
        }
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
