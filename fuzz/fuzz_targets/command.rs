//! Addresses, parameters and command encoding: one line out, and it parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::command(data));
