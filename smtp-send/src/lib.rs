//! Library side of `smtp-send`: argument handling, the message, the built-in loopback sink (also used by
//! tests and benchmarks).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod message;
pub mod sink;
