//! Inputs shared by the benchmarks (and checked by this crate's tests, so a bench never measures garbage).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// A one-line greeting.
pub const GREETING: &[u8] = b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n";

/// A 20-line EHLO reply, as large providers send.
pub fn ehlo20() -> Vec<u8> {
    let mut v = b"250-mx.example.org Hello client.example.org [192.0.2.1]\r\n".to_vec();
    for kw in [
        "PIPELINING",
        "SIZE 52428800",
        "ETRN",
        "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER",
        "AUTH=PLAIN LOGIN",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
        "BINARYMIME",
        "STARTTLS",
        "REQUIRETLS",
        "LIMITS RCPTMAX=100 MAILMAX=1000",
        "DELIVERBY 86400",
        "MT-PRIORITY MIXER",
        "VRFY",
        "X-EXPS GSSAPI NTLM",
    ] {
        v.extend_from_slice(format!("250-{kw}\r\n").as_bytes());
    }
    v.extend_from_slice(b"250 HELP\r\n");
    v
}

/// A long multi-line 5xx reply (50 lines with enhanced codes), as anti-spam rejections look.
pub fn long_5xx() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..50 {
        let sep = if i == 49 { ' ' } else { '-' };
        v.extend_from_slice(
            format!(
                "550{sep}5.7.1 Message rejected by policy, see https://postmaster.example.org/r/{i:04}\r\n"
            )
            .as_bytes(),
        );
    }
    v
}

/// A plain text body of `len` octets: 76-character lines with CRLF.
pub fn plain_body(len: usize) -> Vec<u8> {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem\r\n";
    line.iter().copied().cycle().take(len).collect()
}

/// The plain body with bare LF line ends (a message file written on Unix): every line end is rewritten.
pub fn lf_body(len: usize) -> Vec<u8> {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod temp\n";
    line.iter().copied().cycle().take(len).collect()
}

/// An adversarial body of `len` octets: short lines starting with dots, bare LFs and bare CRs.
pub fn dense_body(len: usize) -> Vec<u8> {
    b".a\n..\r\n.\rx.\n".iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use smtp_proto::reply::{ReplyConfig, ReplyParser};

    #[test]
    fn inputs_are_single_valid_replies() {
        for (input, lines) in [(super::GREETING.to_vec(), 1), (super::ehlo20(), 20), (super::long_5xx(), 50)]
        {
            let mut p = ReplyParser::new(ReplyConfig::default());
            let (n, reply) = p.push(&input).unwrap();
            assert_eq!(n, input.len());
            assert_eq!(reply.unwrap().line_count(), lines);
        }
    }

    #[test]
    fn bodies_have_the_asked_length() {
        assert_eq!(super::plain_body(1000).len(), 1000);
        assert_eq!(super::dense_body(1000).len(), 1000);
        assert_eq!(super::lf_body(1000).len(), 1000);
    }
}
