//! TLS in memory: rustls's `ClientConnection` between the core's plaintext and the adapter's ciphertext, so
//! implicit TLS (RFC 8314) and STARTTLS (RFC 3207) are done once, here, and no adapter touches TLS.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::Error;

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
}

/// A TLS session over the connection.
#[derive(Debug)]
pub(crate) struct Tls {
    conn: ClientConnection,
    /// Decrypted octets on their way to the core.
    plain: Box<[u8]>,
}

impl Tls {
    pub(crate) fn new(setup: &TlsSetup) -> Result<Tls, Error> {
        let mut conn = ClientConnection::new(setup.config.clone(), setup.name.clone()).map_err(tls_error)?;
        // The driver bounds what it hands over (one transmit at a time): no second limit here, which would
        // make a large body's write fall short.
        conn.set_buffer_limit(None);
        Ok(Tls { conn, plain: vec![0; 16 * 1024].into_boxed_slice() })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
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
