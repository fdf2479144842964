//! Session setup: the greeting, EHLO (HELO only after 500/502) or LHLO, STARTTLS, AUTH.

use alloc::vec::Vec;

use super::{Client, Session, encode_fixed, expect::Kind};
use crate::command::Command;
use crate::config::{Protocol, TlsMode};
use crate::ehlo::Capabilities;
use crate::error::{ApiMisuse, Error};
use crate::event::Event;
use crate::reply::{Reply, ReplyParser};
use crate::sasl::{SaslClient, Step};

/// An AUTH exchange under way.
#[derive(Debug)]
pub(super) struct Auth {
    sasl: SaslClient,
    /// An initial response too long for the AUTH line (RFC 4954 §4): sent after the first 334.
    deferred: Option<Vec<u8>>,
    /// `*` was sent: the next reply ends the exchange, whatever it says.
    cancelled: bool,
}

impl Client {
    /// Tells the client that the driver finished the TLS handshake after [`Event::StartTls`]. The client
    /// forgets everything it learnt in plaintext and sends EHLO again (RFC 3207 §4.2).
    pub fn tls_established(&mut self, now: core::time::Duration) -> Result<(), ApiMisuse> {
        if !matches!(self.session, Session::AwaitingTls { .. }) {
            return Err(ApiMisuse::NoTlsUpgradePending);
        }
        self.now = now;
        self.tls = true;
        self.caps = None;
        self.parser = ReplyParser::new(self.config.reply);
        self.send_hello();
        Ok(())
    }

    pub(super) fn on_greeting(&mut self, reply: Reply) {
        match reply.code() {
            220 if self.quit_requested => self.send_quit(None),
            220 => self.send_hello(),
            // 554/521/4yz: no service; the server waits for QUIT (RFC 5321 §3.1).
            _ => self.quit_with(Error::ServiceUnavailable(reply)),
        }
    }

    fn send_hello(&mut self) {
        self.hello(Kind::Hello);
        self.session = Session::Hello;
    }

    /// Writes EHLO, LHLO (both `Kind::Hello`) or HELO.
    fn hello(&mut self, kind: Kind) {
        let name = &self.helo_name;
        let cmd = match (kind, self.config.protocol) {
            (Kind::Helo, _) => Command::Helo(name),
            (_, Protocol::Smtp) => Command::Ehlo(name),
            (_, Protocol::Lmtp) => Command::Lhlo(name),
        };
        let start = self.tx.len();
        encode_fixed(&cmd, &mut self.tx);
        self.log_tx(start, false);
        self.push_expect(kind);
    }

    pub(super) fn on_hello(&mut self, reply: Reply) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::from_ehlo(&reply));
            return self.after_hello();
        }
        // HELO only after "not recognised" (RFC 5321 §3.2), only in SMTP, and never when TLS or AUTH is
        // required: HELO has no extensions to offer either.
        let fallback = matches!(reply.code(), 500 | 502)
            && self.config.protocol == Protocol::Smtp
            && self.config.tls != TlsMode::Required
            && self.config.credentials.is_none();
        if fallback {
            self.hello(Kind::Helo);
        } else {
            self.quit_with(Error::HelloRejected(reply));
        }
    }

    pub(super) fn on_helo(&mut self, reply: Reply) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::none());
            self.after_hello();
        } else {
            self.quit_with(Error::HelloRejected(reply));
        }
    }

    fn after_hello(&mut self) {
        let offered = self.caps.as_ref().is_some_and(Capabilities::starttls);
        let wants = matches!(self.config.tls, TlsMode::Opportunistic | TlsMode::Required);
        if !self.tls && wants && offered {
            self.emit(&Command::StartTls);
            self.push_expect(Kind::StartTls);
            self.session = Session::StartTls;
        } else if !self.tls && self.config.tls == TlsMode::Required {
            self.quit_with(Error::TlsUnavailable(None));
        } else {
            self.start_auth_or_ready();
        }
    }

    pub(super) fn on_starttls(&mut self, reply: Reply) {
        if reply.code() == 220 {
            let deadline = self.now + self.config.timeouts.command;
            self.session = Session::AwaitingTls { deadline };
            self.events.push_back(Event::StartTls);
        } else if self.config.tls == TlsMode::Required {
            self.quit_with(Error::TlsUnavailable(Some(reply)));
        } else {
            // Opportunistic: go on in plaintext with what the EHLO said.
            self.start_auth_or_ready();
        }
    }

    fn start_auth_or_ready(&mut self) {
        let Some(creds) = self.config.credentials.as_ref() else {
            return self.become_ready();
        };
        if !self.tls && !self.config.allow_plaintext_auth {
            // RFC 8314 §5, RFC 4954 §14: no credentials in the clear unless explicitly allowed.
            return self.quit_with(Error::AuthRequiresTls);
        }
        let caps = self.caps.as_ref().expect("after a successful hello");
        let mut mechanisms = self.config.auth_mechanisms.iter().copied();
        let Some(mech) = mechanisms.find(|m| caps.auth(*m) && m.usable_with(creds)) else {
            return self.quit_with(Error::NoAuthMechanism);
        };
        let Ok(mut sasl) = SaslClient::new(mech, creds) else {
            let failed = Error::AuthFailed { reply: None, sasl: None };
            return self.quit_with(failed);
        };
        let ir = sasl.initial_response();
        let start = self.tx.len();
        let name = mech.name();
        let line = |initial_response| Command::Auth { mechanism: name, initial_response };
        // An initial response that would push the line past 512 octets waits for the first 334 (RFC 4954 §4).
        let fits = line(ir.as_deref()).encode(&mut self.tx).is_ok() && self.tx.len() - start <= 512;
        let deferred = if fits {
            None
        } else {
            self.tx.truncate(start);
            encode_fixed(&line(None), &mut self.tx);
            ir
        };
        self.log_tx(start, true);
        self.push_expect(Kind::Auth);
        self.session = Session::Auth(Auth { sasl, deferred, cancelled: false });
    }

    pub(super) fn on_auth(&mut self, reply: Reply) {
        let Session::Auth(auth) = &mut self.session else {
            return;
        };
        match reply.code() {
            235 if !auth.cancelled => {
                let mech = auth.sasl.mechanism();
                self.authenticated = Some(mech);
                self.events.push_back(Event::Authenticated(mech));
                self.become_ready();
            }
            334 if !auth.cancelled => {
                let step = match auth.deferred.take() {
                    Some(ir) => Step::Respond(ir),
                    None => auth.sasl.step(reply.text()),
                };
                let start = self.tx.len();
                match step {
                    Step::Respond(bytes) => {
                        if Command::AuthResponse(&bytes).encode(&mut self.tx).is_err() {
                            // Longer than any server accepts: cancel instead of sending a line it would cut.
                            auth.cancelled = true;
                            encode_fixed(&Command::AuthCancel, &mut self.tx);
                        }
                    }
                    Step::Cancel => {
                        auth.cancelled = true;
                        encode_fixed(&Command::AuthCancel, &mut self.tx);
                    }
                }
                self.log_tx(start, true);
                self.push_expect(Kind::Auth);
            }
            _ => {
                let sasl = auth.sasl.failure().cloned();
                let reply = Some(reply);
                self.quit_with(Error::AuthFailed { reply, sasl });
            }
        }
    }

    fn become_ready(&mut self) {
        self.session = Session::Ready;
        self.events.push_back(Event::Ready);
        self.try_progress();
    }
}
