//! A real DNS server in-process (feature `dns`): `hickory-server` answering UDP and TCP on `127.0.0.1`
//! from one test zone, for MX delivery tests. A name can be made to answer SERVFAIL.
//!
//! ```no_run
//! use smtp_testkit::dns::{DnsServer, Zone};
//!
//! let zone = Zone::new("test")
//!     .mx("example.test", 10, "mx1.example.test")
//!     .a("mx1.example.test", "127.0.0.2".parse().unwrap())
//!     .mx("nomail.test", 0, ".") // a null MX (RFC 7505)
//!     .servfail("broken.test");
//! let dns = DnsServer::start(zone).expect("DNS server");
//! // ... point the resolver at dns.addr() ...
//! ```
//!
//! The server runs on its own thread with a current-thread tokio runtime, so sync and async tests use it
//! alike; it stops when the value is dropped.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::ServerFuture;
use hickory_server::authority::{Catalog, MessageResponseBuilder, ZoneType};
use hickory_server::proto::op::{Header, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryAuthority;

use crate::{StartError, failed};

/// The records a [`DnsServer`] answers with: one zone, every name under its origin.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    records: Vec<Record>,
    servfail: HashSet<LowerName>,
}

/// Short TTLs: nothing a test does should outlive it in a cache.
const TTL: u32 = 5;

impl Zone {
    /// An empty zone for `origin` (e.g. `"test"`), with its SOA. Panics on an invalid name (test support).
    pub fn new(origin: &str) -> Zone {
        let origin = fqdn(origin);
        let soa = SOA::new(origin.clone(), fqdn(&format!("hostmaster.{origin}")), 1, 60, 60, 600, TTL);
        let records = vec![Record::from_rdata(origin.clone(), TTL, RData::SOA(soa))];
        Zone { origin, records, servfail: HashSet::new() }
    }

    /// An MX record for `name`; the exchange `"."` makes a null MX (RFC 7505).
    pub fn mx(self, name: &str, preference: u16, exchange: &str) -> Zone {
        let exchange = if exchange == "." { Name::root() } else { fqdn(exchange) };
        self.record(name, RData::MX(MX::new(preference, exchange)))
    }

    /// An A record for `name`.
    pub fn a(self, name: &str, address: Ipv4Addr) -> Zone {
        self.record(name, RData::A(A(address)))
    }

    /// An AAAA record for `name`.
    pub fn aaaa(self, name: &str, address: Ipv6Addr) -> Zone {
        self.record(name, RData::AAAA(AAAA(address)))
    }

    /// Every query for `name` (any type) is answered SERVFAIL, as by a broken authoritative server.
    pub fn servfail(mut self, name: &str) -> Zone {
        self.servfail.insert(LowerName::new(&fqdn(name)));
        self
    }

    fn record(mut self, name: &str, rdata: RData) -> Zone {
        self.records.push(Record::from_rdata(fqdn(name), TTL, rdata));
        self
    }
}

fn fqdn(name: &str) -> Name {
    let mut name = Name::from_str(name).unwrap_or_else(|e| panic!("invalid DNS name {name:?}: {e}"));
    name.set_fqdn(true);
    name
}

/// `hickory-server` on `127.0.0.1`, UDP and TCP on the same port, answering from a [`Zone`].
pub struct DnsServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on one free port of `127.0.0.1` and starts answering.
    pub fn start(zone: Zone) -> Result<DnsServer, StartError> {
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr().map_err(|e| failed("read the DNS address", e))?;
        let mut authority = InMemoryAuthority::empty(zone.origin.clone(), ZoneType::Primary, false);
        for record in zone.records {
            authority.upsert_mut(record, 1);
        }
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&zone.origin), vec![Arc::new(authority)]);
        let queries = Arc::new(AtomicUsize::new(0));
        let handler = Handler { catalog, servfail: zone.servfail, queries: queries.clone() };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed("start a tokio runtime", e))?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("dns-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut server = ServerFuture::new(handler);
                    let registered = (|| {
                        server.register_socket(tokio::net::UdpSocket::from_std(udp)?);
                        server.register_listener(
                            tokio::net::TcpListener::from_std(tcp)?,
                            Duration::from_secs(5),
                        );
                        Ok::<_, std::io::Error>(())
                    })();
                    let ok = registered.is_ok();
                    let _ = ready.send(registered);
                    if ok {
                        // Dropped or sent: either way the test is done with the server.
                        let _ = stopped.await;
                        let _ = server.shutdown_gracefully().await;
                    }
                })
            })
            .map_err(|e| failed("spawn the DNS thread", e))?;
        match is_ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(failed("register the DNS sockets", e)),
            Err(_) => return Err(StartError::Failed("the DNS thread ended at once".into())),
        }
        Ok(DnsServer { addr, queries, stop: Some(stop), thread: Some(thread) })
    }

    /// `127.0.0.1:port`, for UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many queries came so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port of 127.0.0.1, both non-blocking (for tokio).
fn bind_pair() -> Result<(UdpSocket, TcpListener), StartError> {
    let mut last = None;
    for _ in 0..10 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| failed("bind a UDP socket", e))?;
        let port = udp.local_addr().map_err(|e| failed("read the UDP address", e))?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(tcp) => {
                udp.set_nonblocking(true).map_err(|e| failed("non-blocking UDP", e))?;
                tcp.set_nonblocking(true).map_err(|e| failed("non-blocking TCP", e))?;
                return Ok((udp, tcp));
            }
            // The port is taken for TCP: another one.
            Err(e) => last = Some(e),
        }
    }
    Err(failed("bind UDP and TCP on one port", last.expect("tried")))
}

/// The catalog, except for the names that answer SERVFAIL.
struct Handler {
    catalog: Catalog,
    servfail: HashSet<LowerName>,
    queries: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, mut response: R) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let broken = request.queries().iter().any(|q| self.servfail.contains(q.name()));
        if !broken {
            return self.catalog.handle_request(request, response).await;
        }
        let message = MessageResponseBuilder::from_message_request(request)
            .error_msg(request.header(), ResponseCode::ServFail);
        match response.send_response(message).await {
            Ok(info) => info,
            Err(_) => {
                let mut header = Header::response_from_request(request.header());
                header.set_response_code(ResponseCode::ServFail);
                header.into()
            }
        }
    }
}
