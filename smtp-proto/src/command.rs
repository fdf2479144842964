//! SMTP commands, built from typed values and encoded to wire bytes.
//!
//! A [`Command`] borrows validated values ([`HeloName`], [`ReversePath`], [`ForwardPath`], parameters)
//! and appends exactly one line to a buffer: upper-case verb, RFC 5321 syntax, one CRLF at the end. No
//! input can add a CR, LF or NUL, end the line early or smuggle a parameter (policy TXN-15, INJ-1..5).
//!
//! ```
//! use smtp_proto::address::{ForwardPath, ReversePath};
//! use smtp_proto::command::{Command, MailParams, Notify, OrigRecipient, RcptParams, Ret, EnvId};
//!
//! let from = ReversePath::parse("Alice@Example.ORG").unwrap();
//! let mail = MailParams {
//!     ret: Some(Ret::Hdrs),
//!     envid: Some(EnvId::new("QQ314159").unwrap()),
//!     ..MailParams::default()
//! };
//! let to = ForwardPath::parse("Dana@Ivory.EDU").unwrap();
//! let rcpt = RcptParams {
//!     notify: Some(Notify::on(true, true, false).unwrap()),
//!     orcpt: Some(OrigRecipient::from_forward_path(&to)),
//! };
//!
//! let mut out = Vec::new();
//! Command::Mail { from: &from, params: &mail }.encode(&mut out).unwrap();
//! Command::Rcpt { to: &to, params: &rcpt, smtputf8: false }.encode(&mut out).unwrap();
//! assert_eq!(
//!     out,
//!     b"MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159\r\n\
//!       RCPT TO:<Dana@Ivory.EDU> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dana@Ivory.EDU\r\n"
//! );
//! ```

use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;

use crate::address::{ForwardPath, HeloName, ReversePath};

mod params;
mod xtext;

pub use params::{
    BodyType, EnvId, MAX_ENVID_LEN, MAX_ORCPT_LEN, MailParams, Notify, OrigRecipient, ParamError,
    ParamErrorKind, RcptParams, Ret,
};
pub use xtext::{xtext_decode, xtext_encode};

/// The base command line limit, verb and CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LEN: usize = 512;
/// The limit for a SASL response line (RFC 4954 §4: servers accept at least 12 288 octets).
pub const MAX_AUTH_RESPONSE_LEN: usize = 12_288;

/// One SMTP command, borrowing its arguments.
///
/// ```
/// use smtp_proto::address::HeloName;
/// use smtp_proto::command::Command;
///
/// let name = HeloName::parse("client.example.org").unwrap();
/// let mut out = Vec::new();
/// Command::Ehlo(&name).encode(&mut out).unwrap();
/// Command::Bdat { size: 8, last: true }.encode(&mut out).unwrap();
/// Command::Auth { mechanism: "PLAIN", initial_response: Some(b"\0tim\0tanstaaftanstaaf") }
///     .encode(&mut out)
///     .unwrap();
/// assert_eq!(
///     out,
///     b"EHLO client.example.org\r\nBDAT 8 LAST\r\nAUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO <name>`.
    Ehlo(&'a HeloName),
    /// `HELO <name>`.
    Helo(&'a HeloName),
    /// `LHLO <name>` (LMTP, RFC 2033).
    Lhlo(&'a HeloName),
    /// `MAIL FROM:<path>[ params]`.
    Mail {
        /// The reverse-path; `<>` when null.
        from: &'a ReversePath,
        /// The parameters.
        params: &'a MailParams,
    },
    /// `RCPT TO:<path>[ params]`.
    Rcpt {
        /// The forward-path.
        to: &'a ForwardPath,
        /// The parameters.
        params: &'a RcptParams,
        /// Whether SMTPUTF8 is in use for this transaction: allows a non-ASCII path and selects the
        /// ORCPT `utf-8` form.
        smtputf8: bool,
    },
    /// `DATA`.
    Data,
    /// `BDAT <size>[ LAST]` (RFC 3030); the chunk itself is not part of the command.
    Bdat {
        /// The chunk size in octets.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH <mechanism>[ <initial-response>]` (RFC 4954).
    Auth {
        /// The SASL mechanism name: 1–20 characters of `A-Z`, `0-9`, `-`, `_`.
        mechanism: &'static str,
        /// The raw initial response; sent base64-encoded, or `=` when empty.
        initial_response: Option<&'a [u8]>,
    },
    /// A SASL response line: the raw bytes, base64-encoded (an empty response is an empty line).
    AuthResponse(&'a [u8]),
    /// `*`: cancels a SASL exchange.
    AuthCancel,
}

/// Why a command could not be encoded. Nothing is appended to the buffer then.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The line, CRLF included, would be longer than the limit for this command
    /// ([`Command::max_len`]).
    TooLong {
        /// The length the line would have.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A path is non-ASCII but SMTPUTF8 is not in use for this command (RFC 6531 §3.2).
    SmtpUtf8Required,
    /// The AUTH mechanism name is not 1–20 characters of `A-Z`, `0-9`, `-`, `_`.
    InvalidMechanism,
    /// A parameter does not fit in the form it would be sent in (an ORCPT over 500 characters).
    Param(ParamError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::TooLong { len, max } => {
                write!(f, "command line too long: {len} octets, limit {max}")
            }
            CommandError::SmtpUtf8Required => f.write_str("non-ASCII address needs SMTPUTF8"),
            CommandError::InvalidMechanism => f.write_str("invalid SASL mechanism name"),
            CommandError::Param(e) => fmt::Display::fmt(e, f),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Param(e) => Some(e),
            _ => None,
        }
    }
}

fn valid_mechanism(m: &str) -> bool {
    (1..=20).contains(&m.len())
        && m.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Appends `n` in decimal (no allocation).
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).expect("base64 length overflow");
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .expect("buffer sized by encoded_len");
    debug_assert_eq!(written, len);
}

impl Command<'_> {
    /// The line limit for this command, CRLF included (LIM-01).
    ///
    /// 512 octets (RFC 5321 §4.5.3.1.4), raised for MAIL by each extension in use: `SIZE` +26 (RFC 1870),
    /// `BODY=BINARYMIME` +16 (RFC 3030), `RET`/`ENVID` +110 (RFC 3461 §4), `AUTH=` +500 (RFC 4954 §5),
    /// `SMTPUTF8` +10 (RFC 6531), `REQUIRETLS` +11 (RFC 8689); for RCPT by `NOTIFY`/`ORCPT` +530
    /// (RFC 3461 §4). A SASL response line may have 12 288 octets; the `AUTH` command itself stays at 512
    /// (RFC 4954 §4: leave the initial response out if it does not fit).
    pub fn max_len(&self) -> usize {
        match self {
            Command::Mail { params, .. } => {
                let mut max = MAX_COMMAND_LEN;
                if params.size.is_some() {
                    max += 26;
                }
                if params.body == Some(BodyType::BinaryMime) {
                    max += 16;
                }
                if params.ret.is_some() || params.envid.is_some() {
                    max += 110;
                }
                if params.auth.is_some() {
                    max += 500;
                }
                if params.smtputf8 {
                    max += 10;
                }
                if params.requiretls {
                    max += 11;
                }
                max
            }
            Command::Rcpt { params, .. } => {
                if params.notify.is_some() || params.orcpt.is_some() {
                    MAX_COMMAND_LEN + 530
                } else {
                    MAX_COMMAND_LEN
                }
            }
            Command::AuthResponse(_) => MAX_AUTH_RESPONSE_LEN,
            _ => MAX_COMMAND_LEN,
        }
    }

    /// Appends the command line, CRLF included, to `out`. On error nothing is appended.
    ///
    /// Only `out` grows; nothing else is allocated.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CommandError> {
        let start = out.len();
        let result = self.write(out);
        let len = out.len() - start;
        let max = self.max_len();
        let result = match result {
            Ok(()) if len > max => Err(CommandError::TooLong { len, max }),
            Ok(()) => self.check_sent_forms(),
            err => err,
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Checks limits that apply to a parameter in the form it is sent (after the line length check, so an
    /// over-long line reports `TooLong` first).
    fn check_sent_forms(&self) -> Result<(), CommandError> {
        if let Command::Rcpt { params, smtputf8, .. } = self {
            if let Some(orcpt) = &params.orcpt {
                if orcpt.encoded_len(*smtputf8) > MAX_ORCPT_LEN {
                    return Err(CommandError::Param(ParamError::new("ORCPT", ParamErrorKind::TooLong)));
                }
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), CommandError> {
        match self {
            Command::Ehlo(name) | Command::Helo(name) | Command::Lhlo(name) => {
                let verb: &[u8] = match self {
                    Command::Ehlo(_) => b"EHLO ",
                    Command::Helo(_) => b"HELO ",
                    _ => b"LHLO ",
                };
                out.extend_from_slice(verb);
                out.extend_from_slice(name.as_str().as_bytes());
            }
            Command::Mail { from, params } => {
                if from.needs_smtputf8() && !params.smtputf8 {
                    return Err(CommandError::SmtpUtf8Required);
                }
                out.extend_from_slice(b"MAIL FROM:<");
                out.extend_from_slice(from.wire().as_bytes());
                out.push(b'>');
                if let Some(size) = params.size {
                    out.extend_from_slice(b" SIZE=");
                    push_u64(out, size);
                }
                if let Some(body) = params.body {
                    out.extend_from_slice(b" BODY=");
                    out.extend_from_slice(body.keyword().as_bytes());
                }
                if params.smtputf8 {
                    out.extend_from_slice(b" SMTPUTF8");
                }
                if let Some(ret) = params.ret {
                    out.extend_from_slice(match ret {
                        Ret::Full => b" RET=FULL",
                        Ret::Hdrs => b" RET=HDRS",
                    });
                }
                if let Some(envid) = &params.envid {
                    out.extend_from_slice(b" ENVID=");
                    xtext_encode(envid.as_str().as_bytes(), out);
                }
                if let Some(auth) = &params.auth {
                    out.extend_from_slice(b" AUTH=");
                    match auth.as_mailbox() {
                        Some(m) => xtext_encode(m.as_str().as_bytes(), out),
                        None => out.extend_from_slice(b"<>"),
                    }
                }
                if params.requiretls {
                    out.extend_from_slice(b" REQUIRETLS");
                }
            }
            Command::Rcpt { to, params, smtputf8 } => {
                if to.needs_smtputf8() && !smtputf8 {
                    return Err(CommandError::SmtpUtf8Required);
                }
                out.extend_from_slice(b"RCPT TO:<");
                out.extend_from_slice(to.as_str().as_bytes());
                out.push(b'>');
                if let Some(notify) = &params.notify {
                    out.extend_from_slice(b" NOTIFY=");
                    notify.encode(out);
                }
                if let Some(orcpt) = &params.orcpt {
                    out.extend_from_slice(b" ORCPT=");
                    orcpt.encode(*smtputf8, out);
                }
            }
            Command::Data => out.extend_from_slice(b"DATA"),
            Command::Bdat { size, last } => {
                out.extend_from_slice(b"BDAT ");
                push_u64(out, *size);
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Rset => out.extend_from_slice(b"RSET"),
            Command::Noop => out.extend_from_slice(b"NOOP"),
            Command::Quit => out.extend_from_slice(b"QUIT"),
            Command::StartTls => out.extend_from_slice(b"STARTTLS"),
            Command::Auth { mechanism, initial_response } => {
                if !valid_mechanism(mechanism) {
                    return Err(CommandError::InvalidMechanism);
                }
                out.extend_from_slice(b"AUTH ");
                out.extend_from_slice(mechanism.as_bytes());
                match initial_response {
                    None => {}
                    Some([]) => out.extend_from_slice(b" ="),
                    Some(ir) => {
                        out.push(b' ');
                        push_base64(out, ir);
                    }
                }
            }
            Command::AuthResponse(data) => push_base64(out, data),
            Command::AuthCancel => out.push(b'*'),
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Mailbox;

    fn enc(c: Command<'_>) -> Result<Vec<u8>, CommandError> {
        let mut out = b"prefix".to_vec();
        match c.encode(&mut out) {
            Ok(()) => Ok(out[6..].to_vec()),
            Err(e) => {
                assert_eq!(out, b"prefix", "nothing appended on error");
                Err(e)
            }
        }
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(enc(Command::Data).unwrap(), b"DATA\r\n");
        assert_eq!(enc(Command::Rset).unwrap(), b"RSET\r\n");
        assert_eq!(enc(Command::Noop).unwrap(), b"NOOP\r\n");
        assert_eq!(enc(Command::Quit).unwrap(), b"QUIT\r\n");
        assert_eq!(enc(Command::StartTls).unwrap(), b"STARTTLS\r\n");
        assert_eq!(enc(Command::AuthCancel).unwrap(), b"*\r\n");
        assert_eq!(enc(Command::AuthResponse(b"")).unwrap(), b"\r\n");
        assert_eq!(enc(Command::AuthResponse(b"\x01")).unwrap(), b"AQ==\r\n");
        assert_eq!(enc(Command::Bdat { size: 0, last: true }).unwrap(), b"BDAT 0 LAST\r\n");
        assert_eq!(
            enc(Command::Bdat { size: u64::MAX, last: false }).unwrap(),
            b"BDAT 18446744073709551615\r\n"
        );
    }

    #[test]
    fn auth_lines() {
        let c = Command::Auth { mechanism: "CRAM-MD5", initial_response: None };
        assert_eq!(enc(c).unwrap(), b"AUTH CRAM-MD5\r\n");
        let c = Command::Auth { mechanism: "PLAIN", initial_response: Some(b"") };
        assert_eq!(enc(c).unwrap(), b"AUTH PLAIN =\r\n");
        for bad in ["", "plain", "PLAIN\r\nRSET", "A B", "ABCDEFGHIJKLMNOPQRSTU"] {
            let c = Command::Auth { mechanism: bad, initial_response: None };
            assert_eq!(enc(c), Err(CommandError::InvalidMechanism), "{bad:?}");
        }
        // RFC 4954 §4: the AUTH command stays within 512 octets; a response line may reach 12 288.
        let ir = [0u8; 375]; // 500 base64 octets: "AUTH PLAIN " + 500 + CRLF = 513
        let c = Command::Auth { mechanism: "PLAIN", initial_response: Some(&ir) };
        assert_eq!(enc(c), Err(CommandError::TooLong { len: 513, max: 512 }));
        let c = Command::Auth { mechanism: "PLAIN", initial_response: Some(&ir[..372]) };
        assert_eq!(enc(c).unwrap().len(), 11 + 496 + 2);
        let big = [7u8; 9000];
        assert_eq!(enc(Command::AuthResponse(&big)).unwrap().len(), 12_002);
    }

    #[test]
    fn mail_all_params_order() {
        let from = ReversePath::parse("a@example.org").unwrap();
        let params = MailParams {
            size: Some(12345),
            body: Some(BodyType::BinaryMime),
            smtputf8: true,
            ret: Some(Ret::Full),
            envid: Some(EnvId::new("a b+c=").unwrap()),
            auth: Some(ReversePath::parse("e=mc2@example.com").unwrap()),
            requiretls: true,
        };
        assert_eq!(
            enc(Command::Mail { from: &from, params: &params }).unwrap(),
            b"MAIL FROM:<a@example.org> SIZE=12345 BODY=BINARYMIME SMTPUTF8 RET=FULL \
              ENVID=a+20b+2Bc+3D AUTH=e+3Dmc2@example.com REQUIRETLS\r\n"
        );
        let params = MailParams { auth: Some(ReversePath::null()), ..MailParams::default() };
        assert_eq!(
            enc(Command::Mail { from: &ReversePath::null(), params: &params }).unwrap(),
            b"MAIL FROM:<> AUTH=<>\r\n"
        );
    }

    #[test]
    fn max_len_per_extension() {
        let from = ReversePath::null();
        let to = ForwardPath::postmaster();
        let mut p = MailParams::default();
        assert_eq!(Command::Mail { from: &from, params: &p }.max_len(), 512);
        p.size = Some(1);
        p.body = Some(BodyType::EightBitMime);
        assert_eq!(Command::Mail { from: &from, params: &p }.max_len(), 538);
        p.body = Some(BodyType::BinaryMime);
        p.smtputf8 = true;
        p.requiretls = true;
        p.auth = Some(ReversePath::null());
        p.ret = Some(Ret::Hdrs);
        assert_eq!(Command::Mail { from: &from, params: &p }.max_len(), 512 + 26 + 16 + 10 + 11 + 500 + 110);
        let r = RcptParams::default();
        assert_eq!(Command::Rcpt { to: &to, params: &r, smtputf8: false }.max_len(), 512);
        let r = RcptParams { notify: Some(Notify::never()), orcpt: None };
        assert_eq!(Command::Rcpt { to: &to, params: &r, smtputf8: false }.max_len(), 1042);
        assert_eq!(Command::AuthResponse(b"").max_len(), 12_288);
    }

    #[test]
    fn smtputf8_required() {
        let m = Mailbox::parse("café@example.com").unwrap();
        let from = ReversePath::mailbox(m.clone());
        let p = MailParams::default();
        assert_eq!(enc(Command::Mail { from: &from, params: &p }), Err(CommandError::SmtpUtf8Required));
        let p = MailParams { smtputf8: true, body: Some(BodyType::EightBitMime), ..MailParams::default() };
        assert_eq!(
            enc(Command::Mail { from: &from, params: &p }).unwrap(),
            "MAIL FROM:<café@example.com> BODY=8BITMIME SMTPUTF8\r\n".as_bytes()
        );
        let to = ForwardPath::mailbox(m);
        let r = RcptParams { notify: None, orcpt: Some(OrigRecipient::from_forward_path(&to)) };
        assert_eq!(
            enc(Command::Rcpt { to: &to, params: &r, smtputf8: false }),
            Err(CommandError::SmtpUtf8Required)
        );
        assert_eq!(
            enc(Command::Rcpt { to: &to, params: &r, smtputf8: true }).unwrap(),
            "RCPT TO:<café@example.com> ORCPT=utf-8;café@example.com\r\n".as_bytes()
        );
        // An ASCII recipient with a utf-8 ORCPT in a transaction without SMTPUTF8: the 7-bit form.
        let ascii = ForwardPath::parse("cafe@example.com").unwrap();
        let r = RcptParams {
            notify: None,
            orcpt: Some(OrigRecipient::new("utf-8", "café@example.com").unwrap()),
        };
        assert_eq!(
            enc(Command::Rcpt { to: &ascii, params: &r, smtputf8: false }).unwrap(),
            b"RCPT TO:<cafe@example.com> ORCPT=utf-8;caf\\x{E9}@example.com\r\n"
        );
    }
}
