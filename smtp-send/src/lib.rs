//! Library side of `smtp-send`: the built-in loopback sink (also used by tests and benchmarks).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod sink;
