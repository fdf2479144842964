//! Dot-stuffing, CRLF normalisation, body scan and BDAT framing: chunking-independent, round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::body(data));
