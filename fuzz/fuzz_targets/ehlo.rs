//! EHLO capabilities against a reference reading of the reply.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smtp_proto::internal::fuzzing::ehlo(data));
