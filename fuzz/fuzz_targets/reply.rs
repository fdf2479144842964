//! Reply parser: whole vs chunked vs byte by byte, limits, raw-line agreement; plus an SMTP alphabet pass.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::reply(data));
