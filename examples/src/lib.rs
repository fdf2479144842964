//! What the examples share: where they send. Each example runs as it is (`cargo run --example NAME`) against a
//! built-in sink on 127.0.0.1 that prints what it received, or against the server in `SMTP_SERVER`
//! (`HOST[:PORT]`, or an `smtp://`, `smtps://` or `lmtp://` URL).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use smtp_send::sink::Sink;
use smtp_transport::{Error, Options};

/// Where an example sends.
pub struct Target {
    /// How to reach the server.
    pub options: Options,
    sink: Option<Sink>,
}

impl Target {
    /// `SMTP_SERVER` when it is set, else a fresh built-in sink (plaintext, on a free port).
    pub fn from_env() -> Result<Target, Error> {
        match std::env::var("SMTP_SERVER") {
            Ok(server) if server.contains("://") => {
                Ok(Target { options: Options::from_url(&server)?, sink: None })
            }
            Ok(server) => Ok(Target { options: Options::from_server(&server)?, sink: None }),
            Err(_) => {
                let sink = Sink::start().map_err(Error::Connect)?;
                let mut options = Options::new(sink.addr().ip().to_string(), sink.addr().port());
                options.session.tls = smtp_proto::TlsMode::None;
                Ok(Target { options, sink: Some(sink) })
            }
        }
    }

    /// What the built-in sink received, one line a message (nothing for a real server).
    pub fn show_received(&self) {
        if let Some(sink) = &self.sink {
            let received = sink.take();
            println!("the built-in sink received {} message(s)", received.len());
            for m in received.iter().take(3) {
                println!("  from {} to {}: {} octets", m.mail_from, m.rcpt_to.join(", "), m.size);
            }
            if received.len() > 3 {
                println!("  …");
            }
        }
    }
}
