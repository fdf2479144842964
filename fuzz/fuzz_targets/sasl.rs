//! SASL client steps against each mechanism's documented script.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::sasl(data));
