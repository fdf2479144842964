//! Property test of the whole session on stable: random inputs through the `session` fuzz body
//! (`smtp_proto::internal::fuzzing::session`), which drives a `Client` with a fuzzer-chosen configuration
//! against a cooperative mini server with chosen refusals, raw garbage, time steps, sends, quits, aborts and
//! EOF, and asserts: one outcome per message, all before `Closed`; `Closed` once and last; nothing written
//! after it but one QUIT; Sent or Unknown only past an end of data; with a cooperative server, no line
//! outside DATA/BDAT that is not a client command; bounded transmits.

use proptest::prelude::*;
use smtp_proto::internal::fuzzing::{session, session_happy_seed};

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Random action streams (the body reads them as opcodes and arguments).
    #[test]
    fn random_sessions_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        session(&data);
    }

    /// A working session (one message sent), then anything: the happy seed without its closing QUIT
    /// (its last 4 bytes: the quit action and the 221), then random actions.
    #[test]
    fn happy_start_then_anything(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut data = session_happy_seed();
        data.truncate(data.len() - 4);
        data.extend_from_slice(&tail);
        session(&data);
    }
}
