//! TLS in memory: rustls's `ClientConnection` between the core's plaintext and the adapter's ciphertext, so
//! implicit TLS (RFC 8314) and STARTTLS (RFC 3207) are done once, here, and no adapter touches TLS.
//!
//! Certificates are checked as [`CertificateCheck`] says: required to verify (the default, for a server the
//! user named), or checked and the verdict recorded without failing the handshake (opportunistic TLS for
//! MX delivery, RFC 7435 §1.3: encryption without authentication is better than none).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConnection;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::Error;

/// What the server's certificate must be for a TLS session to go on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateCheck {
    /// Valid for the server's name and issued under a trusted root (webpki roots plus
    /// [`Options::ca_file`](crate::Options::ca_file)); otherwise the handshake fails. The default: right for
    /// a server the user named (a smarthost, a submission server).
    #[default]
    Required,
    /// Any certificate: it is checked all the same (roots, name) and the verdict kept
    /// ([`Driver::tls_verified`](crate::driver::Driver::tls_verified)), but a certificate that does not
    /// verify does not end the handshake. Opportunistic TLS for MX delivery (RFC 7435 §3; Postfix's `may`
    /// and `encrypt` levels): many MX hosts present self-signed or expired certificates, and encryption
    /// without authentication beats plaintext. The handshake's signatures are still checked against the
    /// certificate's key.
    Recorded,
}

/// What a TLS session needs: trust roots and the name the certificate must carry.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    /// The rustls configuration (roots, protocol versions).
    pub config: Arc<rustls::ClientConfig>,
    /// The name checked in the server's certificate.
    pub name: ServerName<'static>,
    /// Implicit TLS: the handshake, before the greeting, must finish within this (the connect timeout). A
    /// STARTTLS handshake has the core's own timer.
    pub handshake_timeout: Duration,
    /// With [`CertificateCheck::Recorded`]: the real check, whose verdict each session records.
    pub(crate) recorded: Option<Arc<WebPkiServerVerifier>>,
}

/// A TLS session over the connection.
#[derive(Debug)]
pub(crate) struct Tls {
    conn: ClientConnection,
    /// Decrypted octets on their way to the core.
    plain: Box<[u8]>,
    /// With [`CertificateCheck::Recorded`]: this session's verifier, which holds the verdict.
    recorder: Option<Arc<Recorder>>,
}

impl Tls {
    pub(crate) fn new(setup: &TlsSetup) -> Result<Tls, Error> {
        let (config, recorder) = match &setup.recorded {
            None => (setup.config.clone(), None),
            Some(check) => {
                // One recorder a session, so each session's verdict is its own.
                let recorder = Arc::new(Recorder { check: check.clone(), verdict: Mutex::new(None) });
                let mut config = (*setup.config).clone();
                config.dangerous().set_certificate_verifier(recorder.clone());
                (Arc::new(config), Some(recorder))
            }
        };
        let mut conn = ClientConnection::new(config, setup.name.clone()).map_err(tls_error)?;
        // The driver bounds what it hands over (one transmit at a time): no second limit here, which would
        // make a large body's write fall short.
        conn.set_buffer_limit(None);
        Ok(Tls { conn, plain: vec![0; 16 * 1024].into_boxed_slice(), recorder })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the server's certificate verified (roots and name), once the handshake is over. Under
    /// [`CertificateCheck::Required`] a finished handshake means it did.
    pub(crate) fn verified(&self) -> Option<bool> {
        if self.conn.is_handshaking() {
            return None;
        }
        match &self.recorder {
            None => Some(true),
            Some(r) => *r.verdict.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Takes ciphertext from the server and hands the plaintext in it to `deliver`.
    pub(crate) fn receive(&mut self, mut data: &[u8], deliver: &mut dyn FnMut(&[u8])) -> Result<(), Error> {
        while !data.is_empty() {
            self.conn.read_tls(&mut data).map_err(Error::Tls)?;
            self.conn.process_new_packets().map_err(tls_error)?;
            loop {
                match self.conn.reader().read(&mut self.plain) {
                    // The server's close_notify: the end of the stream, as EOF will say.
                    Ok(0) => break,
                    Ok(n) => deliver(&self.plain[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(Error::Tls(e)),
                }
            }
        }
        Ok(())
    }

    /// Encrypts `plain` and appends the records, and anything else TLS has to say, to `out`.
    pub(crate) fn send(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.conn.writer().write_all(plain).map_err(Error::Tls)?;
        self.flush(out);
        Ok(())
    }

    /// Appends what TLS has to write (handshake records, alerts) to `out`.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            let _ = self.conn.write_tls(out);
        }
    }

    /// Says close_notify into `out`.
    pub(crate) fn close(&mut self, out: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(out);
    }
}

fn tls_error(e: rustls::Error) -> Error {
    Error::Tls(io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The webpki check whose verdict is kept rather than enforced ([`CertificateCheck::Recorded`]).
#[derive(Debug)]
struct Recorder {
    check: Arc<WebPkiServerVerifier>,
    /// `Some(true)`: valid for the name under a trusted root.
    verdict: Mutex<Option<bool>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.check.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(e) = &verdict {
            tracing::debug!(error = %e, "the server's certificate does not verify; going on (opportunistic TLS)");
        }
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict.is_ok());
        Ok(ServerCertVerified::assertion())
    }

    // The handshake's signatures must still be made with the certificate's key: without that a man in the
    // middle would not even need a certificate of his own.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.supported_verify_schemes()
    }
}
