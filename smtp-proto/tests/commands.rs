//! Command encoding and address validation against `docs/conformance.md`: TV-39, TV-40, TV-49, TV-50, INJ-1..5,
//! LIM-01/02, AUTH-15, plus property tests.

use proptest::prelude::*;
use smtp_proto::address::{AddressErrorKind, ForwardPath, HeloName, Mailbox, ReversePath};
use smtp_proto::command::{
    BodyType, Command, CommandError, EnvId, MailParams, Notify, OrigRecipient, ParamErrorKind, RcptParams,
    Ret, xtext_decode, xtext_encode,
};

/// Encodes after a prefix, checks the one-CRLF invariant, and checks that nothing is appended on error.
fn encode(c: Command<'_>) -> Result<Vec<u8>, CommandError> {
    let mut out = b"prefix".to_vec();
    match c.encode(&mut out) {
        Ok(()) => {
            let line = out[6..].to_vec();
            assert_one_line(&line);
            assert!(line.len() <= c.max_len());
            Ok(line)
        }
        Err(e) => {
            assert_eq!(out, b"prefix", "{e}: nothing may be appended on error");
            Err(e)
        }
    }
}

fn assert_one_line(line: &[u8]) {
    assert!(line.ends_with(b"\r\n"), "{line:?}");
    let body = &line[..line.len() - 2];
    assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0), "{:?}", String::from_utf8_lossy(line));
}

fn mail(from: &str, params: &MailParams) -> Result<Vec<u8>, CommandError> {
    let from = ReversePath::parse(from).unwrap();
    encode(Command::Mail { from: &from, params })
}

fn rcpt(to: &str, params: &RcptParams, smtputf8: bool) -> Result<Vec<u8>, CommandError> {
    let to = ForwardPath::parse(to).unwrap();
    encode(Command::Rcpt { to: &to, params, smtputf8 })
}

fn no_params() -> RcptParams {
    RcptParams::default()
}

fn kind(s: &str) -> AddressErrorKind {
    Mailbox::parse(s).unwrap_err().kind()
}

// ------------------------------------------------------------------------------------------------------
// TV-49: address syntax at the API
// ------------------------------------------------------------------------------------------------------

#[test]
fn tv49_accept_null_reverse_path_mail_only() {
    let p = ReversePath::parse("<>").unwrap();
    assert!(p.is_null());
    assert_eq!(p, ReversePath::null());
    assert_eq!(p.to_string(), "<>");
    assert_eq!(mail("<>", &MailParams::default()).unwrap(), b"MAIL FROM:<>\r\n");
    assert_eq!(mail("", &MailParams::default()).unwrap(), b"MAIL FROM:<>\r\n");
}

#[test]
fn tv49_reject_null_forward_path() {
    assert_eq!(ForwardPath::parse("<>").unwrap_err().kind(), AddressErrorKind::NullNotAllowed);
    assert_eq!(ForwardPath::parse("").unwrap_err().kind(), AddressErrorKind::Empty);
}

#[test]
fn tv49_accept_postmaster_rcpt() {
    for s in ["Postmaster", "postmaster", "POSTMASTER"] {
        assert_eq!(rcpt(s, &no_params(), false).unwrap(), b"RCPT TO:<Postmaster>\r\n");
    }
    assert_eq!(ForwardPath::postmaster().as_str(), "Postmaster");
    // Postmaster without a domain is a forward-path only.
    assert_eq!(ReversePath::parse("Postmaster").unwrap_err().kind(), AddressErrorKind::MissingAt);
    // With a domain it is an ordinary mailbox.
    assert_eq!(rcpt("Postmaster@x.test", &no_params(), false).unwrap(), b"RCPT TO:<Postmaster@x.test>\r\n");
}

#[test]
fn tv49_accept_quoted_space() {
    assert_eq!(
        rcpt("\"john doe\"@example.com", &no_params(), false).unwrap(),
        b"RCPT TO:<\"john doe\"@example.com>\r\n"
    );
}

#[test]
fn tv49_accept_address_literals() {
    assert_eq!(rcpt("user@[192.0.2.1]", &no_params(), false).unwrap(), b"RCPT TO:<user@[192.0.2.1]>\r\n");
    assert_eq!(
        rcpt("user@[IPv6:2001:db8::1]", &no_params(), false).unwrap(),
        b"RCPT TO:<user@[IPv6:2001:db8::1]>\r\n"
    );
    for ok in [
        "user@[IPv6:2001:db8:0:0:0:0:0:1]",
        "user@[IPv6:::ffff:192.0.2.1]",
        "user@[IPv6:::1]",
        "user@[x-tag:some-content]",
    ] {
        assert!(Mailbox::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn tv49_accept_utf8_only_with_smtputf8() {
    let m = Mailbox::parse("café@example.com").unwrap();
    assert!(m.needs_smtputf8());
    let params = MailParams { smtputf8: true, body: Some(BodyType::EightBitMime), ..MailParams::default() };
    assert_eq!(
        mail("café@example.com", &params).unwrap(),
        "MAIL FROM:<café@example.com> BODY=8BITMIME SMTPUTF8\r\n".as_bytes()
    );
    assert_eq!(
        rcpt("café@example.com", &no_params(), true).unwrap(),
        "RCPT TO:<café@example.com>\r\n".as_bytes()
    );
}

#[test]
fn tv49_reject_utf8_without_smtputf8() {
    assert_eq!(mail("café@x.test", &MailParams::default()), Err(CommandError::SmtpUtf8Required));
    assert_eq!(rcpt("café@x.test", &no_params(), false), Err(CommandError::SmtpUtf8Required));
    assert_eq!(rcpt("user@bücher.test", &no_params(), false), Err(CommandError::SmtpUtf8Required));
}

#[test]
fn tv49_minimal_quoting() {
    assert_eq!(Mailbox::parse("\"john\"@example.com").unwrap().as_str(), "john@example.com");
    assert_eq!(rcpt("\"john\"@example.com", &no_params(), false).unwrap(), b"RCPT TO:<john@example.com>\r\n");
    // Needed quoting is kept, with backslashes only where needed.
    assert_eq!(Mailbox::parse(r#""a\ b"@x.test"#).unwrap().as_str(), r#""a b"@x.test"#);
    assert_eq!(Mailbox::parse(r#""a\"b\\c"@x.test"#).unwrap().as_str(), r#""a\"b\\c"@x.test"#);
    assert_eq!(Mailbox::parse(r#"".a"@x.test"#).unwrap().as_str(), r#"".a"@x.test"#);
}

#[test]
fn tv49_case_kept() {
    let m = Mailbox::parse("John.Doe@Example.COM").unwrap();
    assert_eq!(m.as_str(), "John.Doe@Example.COM");
    assert_eq!(m.local_part(), "John.Doe");
    assert_eq!(m.domain(), "Example.COM");
    assert_ne!(m, Mailbox::parse("john.doe@Example.COM").unwrap());
}

#[test]
fn tv49_reject_bad_ipv4_literal() {
    assert_eq!(kind("user@[300.1.1.1]"), AddressErrorKind::AddressLiteral);
    assert_eq!(kind("user@[1.2.3]"), AddressErrorKind::AddressLiteral);
    assert_eq!(kind("user@[1.2.3.4444]"), AddressErrorKind::AddressLiteral);
}

#[test]
fn tv49_reject_bad_ipv6_literal() {
    assert_eq!(kind("user@[IPv6:zz::1]"), AddressErrorKind::AddressLiteral);
    assert_eq!(kind("user@[IPv6:1:2:3:4:5:6:7]"), AddressErrorKind::AddressLiteral);
    assert_eq!(kind("user@[IPv6:1::2::3]"), AddressErrorKind::AddressLiteral);
    assert_eq!(kind("user@[2001:db8::1]"), AddressErrorKind::AddressLiteral);
}

#[test]
fn tv49_reject_underscore_domain() {
    assert_eq!(kind("user@exa_mple.com"), AddressErrorKind::DomainSyntax);
}

#[test]
fn tv49_reject_trailing_dot_domain() {
    assert_eq!(kind("user@example.com."), AddressErrorKind::DomainSyntax);
}

#[test]
fn tv49_reject_leading_dot_local() {
    assert_eq!(kind(".a@x.test"), AddressErrorKind::LocalPartSyntax);
    assert_eq!(kind("a.@x.test"), AddressErrorKind::LocalPartSyntax);
}

#[test]
fn tv49_reject_double_dot_local() {
    assert_eq!(kind("a..b@x.test"), AddressErrorKind::LocalPartSyntax);
}

#[test]
fn tv49_reject_unquoted_angle() {
    assert_eq!(kind("a<b@x.test"), AddressErrorKind::AngleBrackets);
    assert_eq!(kind("a>b@x.test"), AddressErrorKind::AngleBrackets);
    // Legal inside quotes (ADDR-08).
    assert_eq!(rcpt("\"a<b>\"@x.test", &no_params(), false).unwrap(), b"RCPT TO:<\"a<b>\"@x.test>\r\n");
}

#[test]
fn tv49_reject_source_route() {
    assert_eq!(kind("<@a.test:u@b.test>"), AddressErrorKind::SourceRoute);
    assert_eq!(kind("@a.test:u@b.test"), AddressErrorKind::SourceRoute);
    assert_eq!(kind("@a.test,@c.test:u@b.test"), AddressErrorKind::SourceRoute);
    assert_eq!(ForwardPath::parse("<@a.test:u@b.test>").unwrap_err().kind(), AddressErrorKind::SourceRoute);
}

#[test]
fn addr09_angle_brackets_rejected() {
    assert_eq!(kind("<a@x.test>"), AddressErrorKind::AngleBrackets);
    assert_eq!(ReversePath::parse("<a@x.test>").unwrap_err().kind(), AddressErrorKind::AngleBrackets);
    assert_eq!(ForwardPath::parse("<Postmaster>").unwrap_err().kind(), AddressErrorKind::AngleBrackets);
}

// ------------------------------------------------------------------------------------------------------
// INJ-4 / LIM-02 boundaries (TV-49: 65-octet local part, path > 256)
// ------------------------------------------------------------------------------------------------------

/// A 189-octet domain: labels of 63, 63 and 61.
fn domain_189() -> String {
    format!("{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(61))
}

#[test]
fn inj4_local_part_64_65() {
    let l64 = "x".repeat(64);
    assert!(Mailbox::parse(&format!("{l64}@x.test")).is_ok());
    assert_eq!(kind(&format!("{l64}y@x.test")), AddressErrorKind::LocalPartTooLong);
    // The limit applies to the wire form: quotes count.
    assert_eq!(kind(&format!("\"{} \"@x.test", "x".repeat(62))), AddressErrorKind::LocalPartTooLong);
    assert!(Mailbox::parse(&format!("\"{} \"@x.test", "x".repeat(61))).is_ok());
    // Quotes that are dropped do not count.
    assert_eq!(Mailbox::parse(&format!("\"{l64}\"@x.test")).unwrap().local_part(), l64);
}

#[test]
fn inj4_path_256_257() {
    let local = "x".repeat(64);
    let m = Mailbox::parse(&format!("{local}@{}", domain_189())).unwrap();
    assert_eq!(m.as_str().len() + 2, 256);
    let line = rcpt(m.as_str(), &no_params(), false).unwrap();
    assert_eq!(line.len(), "RCPT TO:".len() + 256 + 2);
    let too_long = format!("{local}@{}c", domain_189());
    assert_eq!(kind(&too_long), AddressErrorKind::PathTooLong);
}

#[test]
fn lim02_domain_and_label_limits() {
    assert_eq!(kind(&format!("a@{}.test", "l".repeat(64))), AddressErrorKind::LabelTooLong);
    let d256 = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(64));
    assert_eq!(kind(&format!("a@{d256}")), AddressErrorKind::DomainTooLong);
    let d255 = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(63));
    assert_eq!(kind(&format!("a@{d255}")), AddressErrorKind::PathTooLong);
    assert!(HeloName::parse(&d255).is_ok());
    assert_eq!(HeloName::parse(&d256).unwrap_err().kind(), AddressErrorKind::DomainTooLong);
}

#[test]
fn inj4_command_line_512_513() {
    // AUTH is the one command whose line can reach 512 with valid inputs; RFC 4954 §4 keeps it at 512.
    let ir = [0u8; 375]; // 500 base64 characters
    let ok = Command::Auth { mechanism: "X-AB", initial_response: Some(&ir) };
    assert_eq!(encode(ok).unwrap().len(), 512);
    let over = Command::Auth { mechanism: "X-ABC", initial_response: Some(&ir) };
    assert_eq!(encode(over), Err(CommandError::TooLong { len: 513, max: 512 }));
}

#[test]
fn lim01_orcpt_pushes_rcpt_over_limit() {
    // An ASCII recipient in a transaction without SMTPUTF8, with a long non-ASCII utf-8 ORCPT: its 7-bit
    // form (`\x{HEX}` escapes) makes the line longer than 512 + 530.
    let to = ForwardPath::parse(&format!("{}@{}", "x".repeat(64), domain_189())).unwrap();
    let label = "é".repeat(31);
    let orcpt = OrigRecipient::new("utf-8", &format!("{}@{label}.{label}.{label}", "é".repeat(32))).unwrap();
    let params = RcptParams { notify: Some(Notify::on(true, true, true).unwrap()), orcpt: Some(orcpt) };
    let c = Command::Rcpt { to: &to, params: &params, smtputf8: false };
    assert_eq!(c.max_len(), 1042);
    match encode(c) {
        Err(CommandError::TooLong { len, max: 1042 }) => assert!(len > 1042),
        other => panic!("{other:?}"),
    }
    // With SMTPUTF8 the unitext form is shorter and fits.
    let c = Command::Rcpt { to: &to, params: &params, smtputf8: true };
    assert!(encode(c).is_ok());
}

#[test]
fn lim01_orcpt_over_500_in_sent_form() {
    // Fits the 530 extra octets of the line, but the ORCPT value alone is over 500 characters.
    let label = "é".repeat(31);
    let orcpt = OrigRecipient::new("utf-8", &format!("a@{label}.{label}.{label}")).unwrap();
    let params = RcptParams { notify: None, orcpt: Some(orcpt) };
    let to = ForwardPath::parse("a@x.test").unwrap();
    let c = Command::Rcpt { to: &to, params: &params, smtputf8: false };
    match encode(c) {
        Err(CommandError::Param(e)) => {
            assert_eq!(e.parameter(), "ORCPT");
            assert_eq!(e.kind(), ParamErrorKind::TooLong);
        }
        other => panic!("{other:?}"),
    }
    assert!(encode(Command::Rcpt { to: &to, params: &params, smtputf8: true }).is_ok());
    // The constructors check the 500 limit directly.
    let e = OrigRecipient::rfc822(&"+".repeat(165)).unwrap_err();
    assert_eq!(e.kind(), ParamErrorKind::TooLong);
    assert!(OrigRecipient::rfc822(&"+".repeat(164)).is_ok()); // 7 + 492 = 499
}

// ------------------------------------------------------------------------------------------------------
// TV-50 and INJ-1..3: injection
// ------------------------------------------------------------------------------------------------------

#[test]
fn tv50_address_injection() {
    let e = ReversePath::parse("a@x.test>\r\nRCPT TO:<evil@y.test").unwrap_err();
    assert_eq!(e.kind(), AddressErrorKind::ControlCharacter);
    assert_eq!(e.to_string(), r#"invalid address "a@x.test>\r\nRCPT TO:<evil@y.test": control character"#);
    // Without the CRLF, the `>` alone is still refused.
    assert!(Mailbox::parse("a@x.test> RCPT TO:<evil@y.test").is_err());
}

#[test]
fn tv50_envid_controls() {
    for bad in ["a\r\nb", "a\rb", "a\nb", "a\0b", "a\tb", "a\x7fb"] {
        let e = EnvId::new(bad).unwrap_err();
        assert_eq!(e.kind(), ParamErrorKind::ControlCharacter, "{bad:?}");
        assert_eq!(e.parameter(), "ENVID");
    }
}

#[test]
fn inj1_go_poc_and_friends() {
    for bad in ["r@example.net>\r\nDATA\r\n", "a@b\rc", "a@b\nc", "\"a\r\nb\"@c", "\"a\0b\"@c", "a@b\0"] {
        assert_eq!(kind(bad), AddressErrorKind::ControlCharacter, "{bad:?}");
        assert!(ReversePath::parse(bad).is_err());
        assert!(ForwardPath::parse(bad).is_err());
    }
    // Quoted-pair cannot smuggle a control either.
    assert_eq!(kind("\"a\\\r\"@c"), AddressErrorKind::ControlCharacter);
    // HELO name (Nodemailer GHSA-vvjj-xcjg-gr5g).
    assert_eq!(
        HeloName::parse("client\r\nMAIL FROM:<x@y>").unwrap_err().kind(),
        AddressErrorKind::ControlCharacter
    );
    // AUTH mechanism.
    let c = Command::Auth { mechanism: "PLAIN\r\nRSET", initial_response: None };
    assert_eq!(encode(c), Err(CommandError::InvalidMechanism));
    // ORCPT.
    assert_eq!(OrigRecipient::rfc822("a@b\r\nRSET").unwrap_err().kind(), ParamErrorKind::ControlCharacter);
    assert!(matches!(
        OrigRecipient::new("utf-8", "a@b\r\nRSET").unwrap_err().kind(),
        ParamErrorKind::InvalidAddress(AddressErrorKind::ControlCharacter)
    ));
    assert_eq!(OrigRecipient::new("rfc822;x", "a@b").unwrap_err().kind(), ParamErrorKind::Syntax);
}

#[test]
fn inj2_no_parameter_smuggling() {
    assert!(Mailbox::parse("a@b.c> NOTIFY=NEVER").is_err());
    assert!(ForwardPath::parse("a@b.c> NOTIFY=NEVER").is_err());
    assert!(Mailbox::parse("a@b.c NOTIFY=NEVER").is_err());
    assert_eq!(rcpt("\"a b\"@c.d", &no_params(), false).unwrap(), b"RCPT TO:<\"a b\"@c.d>\r\n");
}

#[test]
fn inj3_envid_with_controls_rejected_at_construction() {
    // seed-and-security INJ-3 shows this value xtext-encoded as `a+20b+0D+0ARSET`. We are stricter (TV-50,
    // RFC 3461 §4.4 "printable US-ASCII"): the value has controls, so it is refused before any encoding.
    assert_eq!(EnvId::new("a b\r\nRSET").unwrap_err().kind(), ParamErrorKind::ControlCharacter);
    // The printable part alone is accepted and xtext-encoded.
    let params = MailParams { envid: Some(EnvId::new("a b=RSET").unwrap()), ..MailParams::default() };
    assert_eq!(mail("a@x.test", &params).unwrap(), b"MAIL FROM:<a@x.test> ENVID=a+20b+3DRSET\r\n");
}

#[test]
fn envid_limits() {
    assert!(EnvId::new(&"x".repeat(100)).is_ok());
    assert_eq!(EnvId::new(&"x".repeat(101)).unwrap_err().kind(), ParamErrorKind::TooLong);
    assert_eq!(EnvId::new("").unwrap_err().kind(), ParamErrorKind::Empty);
    assert_eq!(EnvId::new("é").unwrap_err().kind(), ParamErrorKind::NonAscii);
    // The worst case (100 characters that all need escaping) still fits the raised MAIL limit.
    let params = MailParams {
        envid: Some(EnvId::new(&"+".repeat(100)).unwrap()),
        ret: Some(Ret::Full),
        ..MailParams::default()
    };
    assert!(mail(&format!("{}@{}", "x".repeat(64), domain_189()), &params).is_ok());
}

#[test]
fn inj5_sasl_payloads_are_base64() {
    let c = Command::AuthResponse(b"user\r\nRSET\r\n\0");
    assert_eq!(encode(c).unwrap(), b"dXNlcg0KUlNFVA0KAA==\r\n");
    let c = Command::Auth { mechanism: "PLAIN", initial_response: Some(b"\0tim\r\n\0x") };
    assert_eq!(encode(c).unwrap(), b"AUTH PLAIN AHRpbQ0KAHg=\r\n");
}

// ------------------------------------------------------------------------------------------------------
// TV-39, TV-40, AUTH-15, TV-43..46 shapes
// ------------------------------------------------------------------------------------------------------

#[test]
fn tv39_dsn_wire_bytes() {
    let params = MailParams {
        ret: Some(Ret::Hdrs),
        envid: Some(EnvId::new("QQ314159").unwrap()),
        ..MailParams::default()
    };
    assert_eq!(
        mail("Alice@Example.ORG", &params).unwrap(),
        b"MAIL FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159\r\n"
    );

    let dana = ForwardPath::parse("Dana@Ivory.EDU").unwrap();
    let params = RcptParams {
        notify: Some(Notify::parse("SUCCESS,FAILURE").unwrap()),
        orcpt: Some(OrigRecipient::from_forward_path(&dana)),
    };
    assert_eq!(
        encode(Command::Rcpt { to: &dana, params: &params, smtputf8: false }).unwrap(),
        b"RCPT TO:<Dana@Ivory.EDU> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Dana@Ivory.EDU\r\n"
    );
    assert_eq!(Notify::parse("never").unwrap(), Notify::never());
    let params = RcptParams { notify: Some(Notify::never()), orcpt: None };
    assert_eq!(
        rcpt("Fred@Bombs.AF.MIL", &params, false).unwrap(),
        b"RCPT TO:<Fred@Bombs.AF.MIL> NOTIFY=NEVER\r\n"
    );
}

#[test]
fn tv39_notify_never_with_others_rejected() {
    for bad in ["NEVER,SUCCESS", "SUCCESS,NEVER", "never,delay"] {
        assert_eq!(Notify::parse(bad).unwrap_err().kind(), ParamErrorKind::NeverWithOthers, "{bad}");
    }
    assert_eq!(Notify::parse("SUCCESS,SUCCESS").unwrap_err().kind(), ParamErrorKind::Duplicate);
    assert_eq!(Notify::parse("NEVER,NEVER").unwrap_err().kind(), ParamErrorKind::NeverWithOthers);
    for bad in ["", "SUCCESS,", ",FAILURE", "SUCCESS, FAILURE", "BOUNCE", "SUCCESS\r\n"] {
        assert!(Notify::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(Notify::on(false, false, false).unwrap_err().kind(), ParamErrorKind::Empty);
}

#[test]
fn notify_wire_order() {
    let n = Notify::parse("delay,Failure,SUCCESS").unwrap();
    let params = RcptParams { notify: Some(n), orcpt: None };
    assert_eq!(
        rcpt("b@x.test", &params, false).unwrap(),
        b"RCPT TO:<b@x.test> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"
    );
    let params = RcptParams { notify: Some(Notify::on(false, true, true).unwrap()), orcpt: None };
    assert_eq!(rcpt("b@x.test", &params, false).unwrap(), b"RCPT TO:<b@x.test> NOTIFY=FAILURE,DELAY\r\n");
}

#[test]
fn tv40_xtext_vectors() {
    let mut out = Vec::new();
    xtext_encode(b"e=mc2@example.com", &mut out);
    assert_eq!(out, b"e+3Dmc2@example.com");
    out.clear();
    xtext_encode(b"a b+c", &mut out);
    assert_eq!(out, b"a+20b+2Bc");
    assert_eq!(xtext_decode(b"x+2b").unwrap_err().kind(), ParamErrorKind::InvalidXtext);
    assert_eq!(xtext_decode(b"x+2").unwrap_err().kind(), ParamErrorKind::InvalidXtext);
    assert_eq!(xtext_decode(b"a+20b+2Bc").unwrap(), b"a b+c");
}

#[test]
fn tv40_utf8_orcpt_without_smtputf8() {
    let orcpt = OrigRecipient::new("utf-8", "café@example.com").unwrap();
    let params = RcptParams { notify: None, orcpt: Some(orcpt) };
    assert_eq!(
        rcpt("cafe@example.com", &params, false).unwrap(),
        b"RCPT TO:<cafe@example.com> ORCPT=utf-8;caf\\x{E9}@example.com\r\n"
    );
    // With SMTPUTF8: the utf-8-addr-unitext form.
    let to = ForwardPath::parse("café@example.com").unwrap();
    let params = RcptParams { notify: None, orcpt: Some(OrigRecipient::from_forward_path(&to)) };
    assert_eq!(
        encode(Command::Rcpt { to: &to, params: &params, smtputf8: true }).unwrap(),
        "RCPT TO:<café@example.com> ORCPT=utf-8;café@example.com\r\n".as_bytes()
    );
}

#[test]
fn orcpt_types() {
    let o = OrigRecipient::new("X400", "c=US;a=x").unwrap();
    let params = RcptParams { notify: None, orcpt: Some(o) };
    assert_eq!(rcpt("b@x.test", &params, false).unwrap(), b"RCPT TO:<b@x.test> ORCPT=X400;c+3DUS;a+3Dx\r\n");
    assert_eq!(OrigRecipient::rfc822("café@x.test").unwrap_err().kind(), ParamErrorKind::NonAscii);
    assert_eq!(OrigRecipient::rfc822("").unwrap_err().kind(), ParamErrorKind::Empty);
    assert_eq!(OrigRecipient::new("", "a@b").unwrap_err().kind(), ParamErrorKind::Syntax);
    // rfc822 ORCPT of an address with '+' and '=': xtext.
    let to = ForwardPath::parse("a+b=c@x.test").unwrap();
    let params = RcptParams { notify: None, orcpt: Some(OrigRecipient::from_forward_path(&to)) };
    assert_eq!(
        encode(Command::Rcpt { to: &to, params: &params, smtputf8: false }).unwrap(),
        b"RCPT TO:<a+b=c@x.test> ORCPT=rfc822;a+2Bb+3Dc@x.test\r\n"
    );
}

#[test]
fn auth15_auth_param_is_xtext() {
    let params =
        MailParams { auth: Some(ReversePath::parse("e=mc2@example.com").unwrap()), ..MailParams::default() };
    assert_eq!(
        mail("a@example.org", &params).unwrap(),
        b"MAIL FROM:<a@example.org> AUTH=e+3Dmc2@example.com\r\n"
    );
    let params = MailParams { auth: Some(ReversePath::null()), ..MailParams::default() };
    assert_eq!(mail("a@example.org", &params).unwrap(), b"MAIL FROM:<a@example.org> AUTH=<>\r\n");
}

#[test]
fn mail_size_and_order() {
    let params = MailParams { size: Some(999), ..MailParams::default() };
    assert_eq!(mail("a@example.org", &params).unwrap(), b"MAIL FROM:<a@example.org> SIZE=999\r\n");
    let params = MailParams {
        size: Some(1),
        body: Some(BodyType::SevenBit),
        smtputf8: true,
        ret: Some(Ret::Full),
        envid: Some(EnvId::new("id").unwrap()),
        auth: Some(ReversePath::null()),
        requiretls: true,
    };
    assert_eq!(
        mail("<>", &params).unwrap(),
        b"MAIL FROM:<> SIZE=1 BODY=7BIT SMTPUTF8 RET=FULL ENVID=id AUTH=<> REQUIRETLS\r\n"
    );
}

#[test]
fn helo_names_and_verbs() {
    let h = HeloName::parse("client.example.org").unwrap();
    assert_eq!(encode(Command::Ehlo(&h)).unwrap(), b"EHLO client.example.org\r\n");
    assert_eq!(encode(Command::Helo(&h)).unwrap(), b"HELO client.example.org\r\n");
    assert_eq!(encode(Command::Lhlo(&h)).unwrap(), b"LHLO client.example.org\r\n");
    for ok in ["[192.0.2.1]", "[IPv6:2001:db8::1]"] {
        let h = HeloName::parse(ok).unwrap();
        assert!(h.is_address_literal());
        assert_eq!(encode(Command::Ehlo(&h)).unwrap(), format!("EHLO {ok}\r\n").as_bytes());
    }
    for (bad, k) in [
        ("client\r", AddressErrorKind::ControlCharacter),
        ("client\n", AddressErrorKind::ControlCharacter),
        ("client example", AddressErrorKind::DomainSyntax),
        ("clïent.example", AddressErrorKind::NonAscii),
        ("exa_mple.com", AddressErrorKind::DomainSyntax),
        ("", AddressErrorKind::Empty),
        ("[IPv6:zz::1]", AddressErrorKind::AddressLiteral),
    ] {
        assert_eq!(HeloName::parse(bad).unwrap_err().kind(), k, "{bad:?}");
    }
}

#[test]
fn tv43_to_46_auth_lines() {
    let c = Command::Auth { mechanism: "PLAIN", initial_response: Some(b"\0tim\0tanstaaftanstaaf") };
    assert_eq!(encode(c).unwrap(), b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
    let c = Command::Auth { mechanism: "PLAIN", initial_response: None };
    assert_eq!(encode(c).unwrap(), b"AUTH PLAIN\r\n");
    let c = Command::AuthResponse(b"tim b913a602c7eda7a495b4e6e7334d3890");
    assert_eq!(encode(c).unwrap(), b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
    assert_eq!(encode(Command::AuthResponse(b"\x01")).unwrap(), b"AQ==\r\n");
    assert_eq!(encode(Command::AuthResponse(b"")).unwrap(), b"\r\n");
    assert_eq!(encode(Command::AuthCancel).unwrap(), b"*\r\n");
    let c = Command::Auth { mechanism: "XOAUTH2", initial_response: Some(b"") };
    assert_eq!(encode(c).unwrap(), b"AUTH XOAUTH2 =\r\n");
}

#[test]
fn other_verbs() {
    assert_eq!(encode(Command::Bdat { size: 8, last: true }).unwrap(), b"BDAT 8 LAST\r\n");
    assert_eq!(encode(Command::Bdat { size: 4, last: false }).unwrap(), b"BDAT 4\r\n");
    assert_eq!(encode(Command::Data).unwrap(), b"DATA\r\n");
    assert_eq!(encode(Command::Rset).unwrap(), b"RSET\r\n");
    assert_eq!(encode(Command::Noop).unwrap(), b"NOOP\r\n");
    assert_eq!(encode(Command::Quit).unwrap(), b"QUIT\r\n");
    assert_eq!(encode(Command::StartTls).unwrap(), b"STARTTLS\r\n");
}

#[test]
fn encode_appends_to_existing_buffer() {
    let mut out = b"MAIL FROM:<a@b.test>\r\n".to_vec();
    Command::Data.encode(&mut out).unwrap();
    assert_eq!(out, b"MAIL FROM:<a@b.test>\r\nDATA\r\n");
}

#[cfg(feature = "std")]
#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error>(_: &E) {}
    is_error(&Mailbox::parse("").unwrap_err());
    is_error(&EnvId::new("").unwrap_err());
    is_error(&CommandError::InvalidMechanism);
}

// ------------------------------------------------------------------------------------------------------
// Property tests
// ------------------------------------------------------------------------------------------------------

/// Strings that look like addresses often enough for the accept path to be exercised.
fn addressish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9.!#+=_\"\\\\ é<>:\\[\\]\r\n\\x00-]{0,12}@[a-zA-Z0-9.é_:\\[\\]-]{0,16}",
        "\"[ -~é\r\n]{0,12}\"@[a-z0-9]{1,8}\\.[a-z]{2,4}",
        "[a-z]{1,8}@\\[(IPv6:)?[0-9a-fA-F:.]{0,20}\\]",
    ]
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    addressish().prop_filter_map("invalid", |s| Mailbox::parse(&s).ok())
}

proptest! {
    #[test]
    fn mailbox_parse_never_panics_and_round_trips(s in addressish()) {
        if let Ok(m) = Mailbox::parse(&s) {
            let to = ForwardPath::mailbox(m.clone());
            let line = encode(Command::Rcpt { to: &to, params: &RcptParams::default(), smtputf8: true }).unwrap();
            prop_assert!(line.starts_with(b"RCPT TO:<"));
            prop_assert!(line.ends_with(b">\r\n"));
            prop_assert_eq!(Mailbox::parse(m.as_str()).unwrap(), m.clone());
            let reparsed: Mailbox = m.as_str().parse().unwrap();
            prop_assert_eq!(reparsed.as_str(), m.as_str());
            prop_assert!(m.local_part().len() <= 64);
            prop_assert!(m.as_str().len() + 2 <= 256);
            if s.is_ascii() {
                prop_assert!(!m.needs_smtputf8());
            }
        }
        let _ = ForwardPath::parse(&s);
        let _ = ReversePath::parse(&s);
        if let Ok(h) = HeloName::parse(&s) {
            prop_assert!(h.as_str().is_ascii());
            assert_one_line(&encode(Command::Ehlo(&h)).unwrap());
        }
    }

    #[test]
    fn xtext_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        xtext_encode(&bytes, &mut out);
        prop_assert!(out.iter().all(|&b| (33..=126).contains(&b) && b != b'='));
        prop_assert_eq!(xtext_decode(&out).unwrap(), bytes);
    }

    #[test]
    fn xtext_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(d) = xtext_decode(&bytes) {
            let mut out = Vec::new();
            xtext_encode(&d, &mut out);
            prop_assert_eq!(xtext_decode(&out).unwrap(), d);
        }
    }

    #[test]
    fn any_command_is_one_line(
        from in proptest::option::of(mailbox()),
        to in mailbox(),
        helo in "[a-z0-9.\\[\\]:_-]{1,20}|[ -~\r\n]{0,10}",
        envid in "[ -~\r\n\0]{0,110}",
        notify in "[A-Za-z,]{0,20}",
        size in any::<u64>(),
        flags in any::<(bool, bool, bool, bool)>(),
        sasl in proptest::collection::vec(any::<u8>(), 0..400),
        mech in "[A-Z0-9_-]{1,20}|[ -~\r\n]{0,8}",
    ) {
        let (smtputf8, requiretls, last, with_orcpt) = flags;
        let from = from.map_or_else(ReversePath::null, ReversePath::mailbox);
        let to = ForwardPath::mailbox(to);
        let mail = MailParams {
            size: Some(size),
            body: Some(BodyType::BinaryMime),
            smtputf8,
            ret: Some(Ret::Hdrs),
            envid: EnvId::new(&envid).ok(),
            auth: Some(from.clone()),
            requiretls,
        };
        let rcpt = RcptParams {
            notify: Notify::parse(&notify).ok(),
            orcpt: with_orcpt.then(|| OrigRecipient::from_forward_path(&to)),
        };
        let mech: &'static str = Box::leak(mech.into_boxed_str());
        let helo = HeloName::parse(&helo).ok();
        let no_mail_params = MailParams::default();
        let mut cmds = vec![
            Command::Mail { from: &from, params: &mail },
            Command::Mail { from: &from, params: &no_mail_params },
            Command::Rcpt { to: &to, params: &rcpt, smtputf8 },
            Command::Bdat { size, last },
            Command::Auth { mechanism: mech, initial_response: Some(&sasl) },
            Command::Auth { mechanism: mech, initial_response: None },
            Command::AuthResponse(&sasl),
        ];
        if let Some(h) = &helo {
            cmds.push(Command::Ehlo(h));
        }
        for c in cmds {
            let mut out = vec![b'x'];
            match c.encode(&mut out) {
                Ok(()) => {
                    assert_one_line(&out[1..]);
                    prop_assert!(out.len() - 1 <= c.max_len());
                }
                Err(_) => prop_assert_eq!(&out, &vec![b'x']),
            }
        }
    }
}

/// Stricter than RFC 5321's dcontent: `<` and `>` in a general address literal are refused, so no path
/// written by this crate holds a `>` before its end (found by the `command` fuzz target).
#[test]
fn angle_brackets_refused_in_address_literals() {
    use smtp_proto::address::{AddressErrorKind, ReversePath};
    for bad in ["user@[tag:a>b]", "user@[tag:<x]", "user@[tag:a> NOTIFY=NEVER]"] {
        assert_eq!(ReversePath::parse(bad).unwrap_err().kind(), AddressErrorKind::AddressLiteral, "{bad}");
    }
}
