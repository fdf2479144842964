//! Fuzz body for addresses, parameters and command encoding: one line out, and it parses back.

use alloc::{string::String, vec::Vec};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Input, push_bytes};
use crate::address::{ForwardPath, HeloName, Mailbox, ReversePath};
use crate::command::{
    BodyType, Command, CommandError, EnvId, MAX_ENVID_LEN, MailParams, Notify, OrigRecipient, RcptParams,
    Ret, xtext_decode, xtext_encode,
};
use crate::sasl::Mechanism;

/// Characters that make address syntax interesting: atoms, quotes, literals, brackets, controls, UTF-8.
const ADDRESS_CHARS: [char; 48] = [
    'a',
    'b',
    'x',
    'Z',
    '0',
    '1',
    '9',
    '.',
    '.',
    '@',
    '@',
    '"',
    '"',
    '\\',
    '[',
    ']',
    ':',
    ':',
    '<',
    '>',
    ' ',
    '-',
    '-',
    '+',
    '=',
    '_',
    '!',
    '#',
    '~',
    ',',
    ';',
    '(',
    ')',
    '\r',
    '\n',
    '\0',
    '\t',
    '\u{7f}',
    '\u{85}',
    'é',
    '中',
    '\u{1f600}',
    'I',
    'P',
    'v',
    '6',
    'f',
    '2',
];

/// Everything the [`command`] body reads, in order. Build seeds with [`command_seed`].
#[derive(Clone, Debug, Default)]
pub struct CommandSeed<'a> {
    /// Bit 0: map the strings onto address characters; bit 1: SMTPUTF8 on MAIL; bit 2: REQUIRETLS; bit 3:
    /// RET; bit 4: RET=FULL (else HDRS); bit 5: SMTPUTF8 on RCPT; bit 6: SIZE; bit 7: AUTH= from the address.
    pub flags: u8,
    /// Bits 0-1: BODY (none, 7BIT, 8BITMIME, BINARYMIME); bit 2: ENVID; bit 3: NOTIFY; bit 4: ORCPT; bit 5:
    /// ORCPT with the `orcpt_type` given as address type (else `rfc822`).
    pub options: u8,
    /// The SIZE value.
    pub size: u64,
    /// Mailbox, reverse-path and forward-path text.
    pub address: &'a [u8],
    /// HELO name text.
    pub helo: &'a [u8],
    /// ENVID text.
    pub envid: &'a [u8],
    /// NOTIFY text.
    pub notify: &'a [u8],
    /// ORCPT address type.
    pub orcpt_type: &'a [u8],
    /// ORCPT address text.
    pub orcpt: &'a [u8],
    /// Raw bytes for xtext and for an AUTH response.
    pub raw: &'a [u8],
}

/// Builds a [`command`] input from its fields (each string at most 255 bytes).
pub fn command_seed(seed: &CommandSeed<'_>) -> Vec<u8> {
    let mut out = alloc::vec![seed.flags, seed.options];
    out.extend_from_slice(&seed.size.to_le_bytes());
    for s in [seed.address, seed.helo, seed.envid, seed.notify, seed.orcpt_type, seed.orcpt] {
        push_bytes(&mut out, s);
    }
    out.extend_from_slice(seed.raw);
    out
}

fn text(bytes: &[u8], alphabet: bool) -> String {
    if alphabet {
        bytes.iter().map(|&b| ADDRESS_CHARS[usize::from(b) % ADDRESS_CHARS.len()]).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Input layout: see [`CommandSeed`] (fields in declaration order; strings length-prefixed).
///
/// Asserts, for whatever the parsers accept:
/// - [`Mailbox`], [`ReversePath`], [`ForwardPath`], [`HeloName`], [`EnvId`], [`Notify`] and
///   [`OrigRecipient`] parse back to an equal value from their own text, which has no control character;
///   a mailbox's local part and domain make up its text, within the RFC 5321 length limits;
/// - MAIL, RCPT, EHLO, HELO and LHLO encode either to an error, appending nothing, or to exactly one line:
///   one CRLF at the end, no other CR, LF or NUL, within [`Command::max_len`]; the path between the angle
///   brackets is the value's text and parses back to it; after it come exactly the parameters asked for,
///   one per space-separated token;
/// - `xtext_decode(xtext_encode(x)) == x`, and the encoding is printable ASCII without SP;
/// - an AUTH response line is base64 of the raw bytes.
pub fn command(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let options = input.byte();
    let size = input.u64();
    let alphabet = flags & 1 != 0;
    let [address, helo, envid, notify, orcpt_type, orcpt] = [(); 6].map(|()| text(input.bytes(), alphabet));
    let raw = input.rest();

    if let Ok(m) = Mailbox::parse(&address) {
        check_mailbox(&m);
    }
    let envid = EnvId::new(&envid).ok();
    if let Some(e) = &envid {
        let s = e.as_str();
        assert!(!s.is_empty() && s.len() <= MAX_ENVID_LEN);
        assert!(s.bytes().all(|b| (b' '..=b'~').contains(&b)), "ENVID {s:?}");
        assert_eq!(EnvId::new(s).as_ref(), Ok(e));
    }
    let notify = Notify::parse(&notify).ok();
    if let Some(n) = notify {
        assert_eq!(n.is_never(), !(n.success() || n.failure() || n.delay()));
        assert_eq!(Notify::parse(&notify_text(n)), Ok(n));
    }
    let orcpt = if options & 0x20 != 0 {
        OrigRecipient::new(&orcpt_type, &orcpt)
    } else {
        OrigRecipient::rfc822(&orcpt)
    }
    .ok();
    if let Some(o) = &orcpt {
        assert_eq!(OrigRecipient::new(o.addr_type(), o.address()).as_ref(), Ok(o));
    }

    // MAIL.
    if let Ok(from) = ReversePath::parse(&address) {
        assert_eq!(ReversePath::parse(&alloc::format!("{from}")).as_ref(), Ok(&from));
        let params = MailParams {
            size: (flags & 0x40 != 0).then_some(size),
            body: [None, Some(BodyType::SevenBit), Some(BodyType::EightBitMime), Some(BodyType::BinaryMime)]
                [usize::from(options & 3)],
            smtputf8: flags & 2 != 0,
            ret: (flags & 8 != 0).then_some(if flags & 0x10 != 0 { Ret::Full } else { Ret::Hdrs }),
            envid: envid.filter(|_| options & 4 != 0),
            auth: (flags & 0x80 != 0).then(|| from.clone()),
            requiretls: flags & 4 != 0,
        };
        let cmd = Command::Mail { from: &from, params: &params };
        if let Some(line) = encode(&cmd, from.needs_smtputf8() && !params.smtputf8, false) {
            let path = from.as_mailbox().map_or("", Mailbox::as_str);
            let params_text = split_path(&line, b"MAIL FROM:<", path);
            assert_eq!(ReversePath::parse(path).as_ref(), Ok(&from));
            let want = [
                params.size.is_some(),
                params.body.is_some(),
                params.smtputf8,
                params.ret.is_some(),
                params.envid.is_some(),
                params.auth.is_some(),
                params.requiretls,
            ];
            check_params(params_text, want.iter().filter(|&&b| b).count());
        }
    }

    // RCPT.
    if let Ok(to) = ForwardPath::parse(&address) {
        assert_eq!(ForwardPath::parse(to.as_str()).as_ref(), Ok(&to));
        let params = RcptParams {
            notify: notify.filter(|_| options & 8 != 0),
            orcpt: orcpt.filter(|_| options & 0x10 != 0),
        };
        let smtputf8 = flags & 0x20 != 0;
        let cmd = Command::Rcpt { to: &to, params: &params, smtputf8 };
        let utf8_error = to.needs_smtputf8() && !smtputf8;
        if let Some(line) = encode(&cmd, utf8_error, params.orcpt.is_some()) {
            let params_text = split_path(&line, b"RCPT TO:<", to.as_str());
            assert_eq!(ForwardPath::parse(to.as_str()).as_ref(), Ok(&to));
            let want = usize::from(params.notify.is_some()) + usize::from(params.orcpt.is_some());
            check_params(params_text, want);
        }
    }

    // EHLO, HELO, LHLO.
    if let Ok(name) = HeloName::parse(&helo) {
        assert!(name.as_str().is_ascii());
        assert_eq!(HeloName::parse(name.as_str()).as_ref(), Ok(&name));
        assert_eq!(name.is_address_literal(), name.as_str().starts_with('['));
        for (cmd, verb) in [
            (Command::Ehlo(&name), &b"EHLO "[..]),
            (Command::Helo(&name), b"HELO "),
            (Command::Lhlo(&name), b"LHLO "),
        ] {
            let line = encode(&cmd, false, false).expect("a HELO name always fits on a line");
            assert_eq!(&line[..5], verb);
            assert_eq!(&line[5..line.len() - 2], name.as_str().as_bytes());
        }
    }

    // xtext.
    let mut x = Vec::new();
    xtext_encode(raw, &mut x);
    assert!(x.iter().all(|&b| (33..=126).contains(&b) && b != b'='));
    assert_eq!(xtext_decode(&x).as_deref(), Ok(raw));
    if let Ok(decoded) = xtext_decode(raw) {
        assert!(decoded.len() <= raw.len());
    }

    // AUTH.
    if let Some(line) = encode(&Command::AuthResponse(raw), false, false) {
        let b64 = &line[..line.len() - 2];
        assert_eq!(STANDARD.decode(b64).as_deref(), Ok(raw));
    }
    let mech = Mechanism::PREFERENCE[usize::from(options >> 6) % 5];
    let auth = Command::Auth { mechanism: mech.name(), initial_response: Some(raw) };
    if let Some(line) = encode(&auth, false, false) {
        let rest = line.strip_prefix(b"AUTH ").expect("AUTH verb");
        let rest = rest.strip_prefix(mech.name().as_bytes()).expect("mechanism name");
        let ir = match &rest[..rest.len() - 2] {
            b" =" => Vec::new(),
            b64 => {
                let b64 = b64.strip_prefix(b" ").expect("space before the response");
                STANDARD.decode(b64).expect("base64 initial response")
            }
        };
        assert_eq!(ir, raw);
    }
}

/// `NOTIFY` text from the getters: `NEVER` or the set keywords joined with `,`.
fn notify_text(n: Notify) -> String {
    if n.is_never() {
        return String::from("NEVER");
    }
    let names = [(n.success(), "SUCCESS"), (n.failure(), "FAILURE"), (n.delay(), "DELAY")];
    let set: Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, s)| *s).collect();
    set.join(",")
}

/// Mailbox invariants: canonical text parses back to itself; parts and limits.
fn check_mailbox(m: &Mailbox) {
    let s = m.as_str();
    assert_eq!(Mailbox::parse(s).as_ref(), Ok(m), "{s:?}");
    assert_eq!(alloc::format!("{}@{}", m.local_part(), m.domain()), s, "parts");
    assert!(!m.local_part().is_empty() && !m.domain().is_empty());
    assert!(m.local_part().len() <= crate::address::MAX_LOCAL_PART_LEN);
    assert!(m.domain().len() <= crate::address::MAX_DOMAIN_LEN);
    assert!(s.len() + 2 <= crate::address::MAX_PATH_LEN);
    assert!(!s.chars().any(char::is_control), "control in {s:?}");
    assert_eq!(m.needs_smtputf8(), !s.is_ascii());
}

/// Encodes `cmd`; on success checks it is exactly one line, on error that nothing was appended and that the
/// error is one the caller allows: SMTPUTF8 required when `utf8_error`, a parameter error when
/// `param_error`, too long only when the line really passes [`Command::max_len`].
fn encode(cmd: &Command<'_>, utf8_error: bool, param_error: bool) -> Option<Vec<u8>> {
    let mut out = b"x".to_vec();
    match cmd.encode(&mut out) {
        Ok(()) => {
            assert!(!utf8_error, "a non-ASCII path went out without SMTPUTF8");
            let line = out.split_off(1);
            assert!(line.ends_with(b"\r\n"), "no CRLF at the end");
            let body = &line[..line.len() - 2];
            assert!(!body.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)), "CR, LF or NUL inside {line:?}");
            assert!(line.len() <= cmd.max_len(), "{} > {}", line.len(), cmd.max_len());
            Some(line)
        }
        Err(e) => {
            assert_eq!(out, b"x", "bytes appended on error");
            match e {
                CommandError::TooLong { len, max } => {
                    assert!(len > max && max == cmd.max_len(), "{e:?}");
                }
                CommandError::SmtpUtf8Required => assert!(utf8_error, "{e:?}"),
                CommandError::Param(_) => assert!(param_error, "{e:?}"),
                CommandError::InvalidMechanism => panic!("{e:?} for {cmd:?}"),
            }
            if utf8_error {
                assert_eq!(e, CommandError::SmtpUtf8Required);
            }
            None
        }
    }
}

/// Checks that `line` is `prefix path >` and returns what follows (without the CRLF).
fn split_path<'l>(line: &'l [u8], prefix: &[u8], path: &str) -> &'l [u8] {
    let rest = line.strip_prefix(prefix).expect("verb and opening bracket");
    let rest = rest.strip_prefix(path.as_bytes()).expect("the path as its text");
    let rest = rest.strip_prefix(b">").expect("closing bracket");
    &rest[..rest.len() - 2]
}

/// The parameters after the path: ` KEY[=VALUE]` tokens, exactly `n`, none empty.
fn check_params(params: &[u8], n: usize) {
    if n == 0 {
        assert!(params.is_empty(), "unexpected parameters {params:?}");
        return;
    }
    let rest = params.strip_prefix(b" ").expect("space before parameters");
    let tokens: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
    assert_eq!(tokens.len(), n, "parameters {params:?}");
    for t in tokens {
        let key = t.split(|&b| b == b'=').next().unwrap_or(b"");
        assert!(
            !key.is_empty() && key.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "parameter {t:?}"
        );
    }
}
