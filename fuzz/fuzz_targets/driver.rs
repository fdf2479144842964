//! The connection driver against a mini server that records what it delivered: a report per message, every
//! recipient once, outcomes that agree with the server, no double delivery, no endless wait.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_transport::fuzzing::driver(data));
