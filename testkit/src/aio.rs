//! Python's `aiosmtpd` with a handler that stores every message.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{
    POLL, ReceivedMessage, START_TIMEOUT, StartError, failed, files_in, find_program, localhost,
    poll_messages, read_log, split_line, temp_dir, wait_for_port,
};

/// The server script, written into each instance's folder.
const SCRIPT: &str = include_str!("../assets/aiosmtpd_server.py");
/// The script's exit status when `import aiosmtpd` fails.
const EXIT_NO_AIOSMTPD: i32 = 3;

/// How [`Aiosmtpd`] behaves; `AioOptions::default()` is plain SMTP without TLS or AUTH.
#[derive(Debug, Clone)]
pub struct AioOptions {
    /// Offer STARTTLS (with the certificate described at [`Aiosmtpd::ca_pem_path`]).
    pub starttls: bool,
    /// Speak TLS from the first byte (like port 465); STARTTLS is then not offered, and
    /// combining it with `starttls` is refused.
    pub implicit_tls: bool,
    /// `(user, password)`: offer AUTH PLAIN and LOGIN, accept only these credentials
    /// (`535 5.7.8` otherwise), and refuse MAIL, RCPT and DATA before AUTH
    /// (`530 5.7.0 Authentication required`). `None`: AUTH is neither offered nor required.
    pub auth: Option<(String, String)>,
    /// With `auth`: offer AUTH only after STARTTLS (AUTH before it gets `538 5.7.11`). Has no
    /// effect with `implicit_tls`, where every session is encrypted. Default `true`.
    pub auth_require_tls: bool,
}

impl Default for AioOptions {
    fn default() -> Self {
        AioOptions { starttls: false, implicit_tls: false, auth: None, auth_require_tls: true }
    }
}

/// `aiosmtpd` (Python) on 127.0.0.1 with a handler that stores every message byte for byte.
///
/// EHLO offers `SIZE 33554432`, `8BITMIME`, `SMTPUTF8`, then `STARTTLS` and `AUTH PLAIN LOGIN`
/// as configured in [`AioOptions`]; no PIPELINING (replies still come in order if you pipeline),
/// no DSN, no CHUNKING. aiosmtpd refuses any RCPT parameter (such as `NOTIFY=`) with `555`, and
/// MAIL parameters other than `SIZE`, `BODY` and `SMTPUTF8` with `555` too. Lines longer than
/// 1000 bytes plus CRLF get `500 Line too long`.
///
/// Recipients are refused by their local part (case-insensitive): starting with `reject` →
/// `550 5.1.1 no such user`, `tempfail` → `451 4.3.0 try later`, `full` → `552 5.2.2 mailbox
/// full`; everything else gets `250 OK`, and so does the end of DATA.
///
/// Killed on drop; the Python process also exits (and deletes its folder) when the test process
/// dies, because its stdin reaches end-of-file.
pub struct Aiosmtpd {
    child: Child,
    port: u16,
    ca: PathBuf,
    messages: PathBuf,
    _dir: tempfile::TempDir,
}

impl Aiosmtpd {
    /// Starts the server on a port the kernel picks and waits until it accepts connections.
    ///
    /// Generates a test CA and a server certificate every time (whether or not TLS is on).
    /// Fails with [`StartError::Missing`] (`"python3"` or `"aiosmtpd"`) if either is missing.
    pub fn start(opts: AioOptions) -> Result<Aiosmtpd, StartError> {
        if opts.starttls && opts.implicit_tls {
            return Err(StartError::Failed(
                "AioOptions: starttls and implicit_tls exclude each other".into(),
            ));
        }
        let python = find_program("python3").ok_or(StartError::Missing("python3"))?;
        let dir = temp_dir("aiosmtpd")?;
        let path = dir.path();
        let write = |name: &str, data: &[u8]| {
            fs::write(path.join(name), data).map_err(|e| failed(&format!("write {name}"), e))
        };
        let (ca, cert, key) = certificates()?;
        write("ca.pem", ca.as_bytes())?;
        write("server.pem", cert.as_bytes())?;
        write("server.key", key.as_bytes())?;
        let config = serde_json::json!({
            "starttls": opts.starttls,
            "implicit_tls": opts.implicit_tls,
            "auth": opts.auth,
            "auth_require_tls": opts.auth_require_tls,
        });
        write("config.json", config.to_string().as_bytes())?;
        write("server.py", SCRIPT.as_bytes())?;
        let log = path.join("stderr");
        let stderr = File::create(&log).map_err(|e| failed("create the log file", e))?;

        let child = Command::new(python)
            .arg("-u")
            .arg(path.join("server.py"))
            .arg(path)
            // The script exits when this pipe closes: keep it in `child`.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| failed("spawn python3", e))?;
        let mut server =
            Aiosmtpd { child, port: 0, ca: path.join("ca.pem"), messages: path.join("messages"), _dir: dir };
        server.port = server.wait_for_port_file(&log)?;
        let port = server.port;
        wait_for_port(port, || server.died(&log).err().map(|e| e.to_string()))?;
        Ok(server)
    }

    /// Polls for the port the script writes once it listens.
    fn wait_for_port_file(&mut self, log: &Path) -> Result<u16, StartError> {
        let file = self.messages.with_file_name("port");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.died(log)?;
            if let Ok(text) = fs::read_to_string(&file) {
                return text
                    .trim()
                    .parse()
                    .map_err(|_| StartError::Failed(format!("bad port file: {text:?}")));
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "aiosmtpd did not listen within {START_TIMEOUT:?}: {}",
                    read_log(log)
                )));
            }
            sleep(POLL);
        }
    }

    /// An error if the Python process has exited.
    fn died(&mut self, log: &Path) -> Result<(), StartError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) if status.code() == Some(EXIT_NO_AIOSMTPD) => {
                Err(StartError::Missing("aiosmtpd"))
            }
            Ok(Some(status)) => {
                Err(StartError::Failed(format!("aiosmtpd exited with {status}: {}", read_log(log))))
            }
            Err(e) => Err(failed("wait for aiosmtpd", e)),
        }
    }

    /// The port the server listens on (at 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// The PEM file of the test CA that signed the server's certificate; trust it (and only it)
    /// in your client.
    ///
    /// The CA is generated at start with rcgen (ECDSA P-256, `CA:TRUE`). The server certificate
    /// it signs is an end-entity certificate (webpki refuses a self-signed CA as a server
    /// certificate) for the DNS name `localhost` and the IP address `127.0.0.1`, with extended
    /// key usage serverAuth. The server sends the end-entity certificate only, not the CA.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca
    }

    /// The messages accepted so far (250 after DATA), in the order they arrived.
    ///
    /// - `body` is aiosmtpd's `envelope.original_content`, **byte-exact**: the bytes after the
    ///   354 reply up to and including the CRLF before the final `.`, with one leading `.`
    ///   removed from every line that starts with one (lines are split on CRLF only, so a `.`
    ///   after a bare LF stays). CRLF, bare CR and bare LF are kept as sent. (`content` is the
    ///   same object here, since the server does not decode.) For a correct client it equals
    ///   the message before dot-stuffing.
    /// - `from`, `recipients`: the envelope; only accepted recipients are listed.
    /// - `raw` is the stored file: one line of JSON (`mail_from`, `mail_options` such as
    ///   `["BODY=8BITMIME", "SMTPUTF8"]`, `rcpt_tos`, `rcpt_options`, `smtp_utf8`, `tls`,
    ///   `authenticated`), a `\n`, then `body`.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        let mut files: Vec<PathBuf> = files_in(&self.messages)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "msg"))
            .collect();
        files.sort(); // numbered in arrival order
        files.into_iter().filter_map(|f| fs::read(f).ok()).filter_map(parse_stored).collect()
    }

    /// Waits up to `timeout` until at least `n` messages are stored, then returns
    /// [`messages`](Self::messages) (which may hold fewer than `n` on timeout).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        poll_messages(n, timeout, || self.messages())
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stored file: JSON envelope line, then the content.
fn parse_stored(raw: Vec<u8>) -> Option<ReceivedMessage> {
    let (json, body) = split_line(&raw)?;
    let meta: serde_json::Value = serde_json::from_slice(json).ok()?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    // aiosmtpd keeps the null sender as "<>".
    let from = Some(text(&meta["mail_from"])).filter(|f| f != "<>").unwrap_or_default();
    let recipients = meta["rcpt_tos"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    let body = body.to_vec();
    Some(ReceivedMessage { from, recipients, body, raw })
}

/// A CA certificate, and a server certificate plus key signed by it, all PEM.
pub(crate) fn certificates() -> Result<(String, String, String), StartError> {
    certificates_from("smtp-testkit test CA")
}

/// [`certificates`] from a CA with this common name (a CA of another name is another issuer).
pub(crate) fn certificates_from(ca_name: &str) -> Result<(String, String, String), StartError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| StartError::Failed(format!("generate certificates: {e}"));

    let mut ca_params = CertificateParams::new(Vec::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(err)?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stored_message() {
        let raw =
            b"{\"mail_from\": \"a@b.c\", \"rcpt_tos\": [\"x@y.z\", \"w@y.z\"]}\nA: b\r\n\r\n.x\r\n".to_vec();
        let m = parse_stored(raw.clone()).expect("parses");
        assert_eq!(m.from, "a@b.c");
        assert_eq!(m.recipients, ["x@y.z", "w@y.z"]);
        assert_eq!(m.body, b"A: b\r\n\r\n.x\r\n");
        assert_eq!(m.raw, raw);
    }

    #[test]
    fn certificates_are_pem() {
        let (ca, cert, key) = certificates().expect("rcgen");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
