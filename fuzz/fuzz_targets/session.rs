//! The whole Client session: one outcome per message, Closed last, nothing after it but QUIT.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::session(data));
