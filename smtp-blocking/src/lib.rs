//! Blocking `std::net` driver for [`smtp_proto`].
//!
//! Placeholder member: the driver lands with the issue "smtp-blocking and smtp-smol: drivers with TLS".
//! Until then this crate only re-exports the core so that the workspace layout is final.
#![forbid(unsafe_code)]

pub use smtp_proto;
