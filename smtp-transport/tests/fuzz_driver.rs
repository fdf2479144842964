//! The `driver` fuzz body (`smtp_transport::fuzzing::driver`) on stable: the committed corpus under
//! `fuzz/corpus/driver/`, its seeds (each must be committed unchanged: `SMTP_FUZZ_WRITE_CORPUS=1` rewrites
//! them), and a few thousand inputs from a fixed pseudo-random sequence, so that `cargo test` alone already
//! explores beyond the seeds.

use std::path::{Path, PathBuf};

use smtp_transport::fuzzing::driver;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/driver")
}

/// Seeds by layout (see the body's docs): flags, then [mail_max,] the message count and rate, one byte a
/// message.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // One message, one recipient, every reply cooperative.
        ("happy", vec![0, 0, 0]),
        // Three messages of five recipients against RCPTMAX=2 and MAILMAX=3: split, then a new connection.
        ("split-rcptmax", vec![1, 2, 4, 4, 4]),
        // Our own cap of one recipient a transaction, two messages of three.
        ("rcpt-cap-1", vec![8, 1, 2, 2]),
        // MAILMAX=1: a connection a transaction, four messages.
        ("mailmax-1", vec![3, 3, 1, 1, 1, 1]),
        // The client's own limit of two messages a connection, three messages.
        ("client-mail-max-2", vec![0x40, 1, 2, 0, 0, 0]),
        // Six recipients against RCPTMAX=2 with a body that cannot be read again: no second transaction.
        ("not-replayable", vec![1, 0, 0x85]),
        // Sending again what a lost connection did not send, a liveness check, then QUIT.
        ("retry-and-check", vec![0x84, 1, 3, 3]),
        // Three messages at 2 a second: each transaction waits for the rate.
        ("paced", vec![0, 0x92, 1, 1, 1]),
        // LMTP, two messages of three recipients against RCPTMAX=2: a reply per recipient after each body.
        ("lmtp-split", vec![1, 0x05, 2, 2]),
    ]
}

#[test]
fn seeds_are_committed_and_hold() {
    let write = std::env::var_os("SMTP_FUZZ_WRITE_CORPUS").is_some_and(|v| v == "1");
    for (name, data) in seeds() {
        let path = corpus().join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(corpus()).unwrap();
            std::fs::write(&path, &data).unwrap();
        }
        driver(&data);
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == data,
            "{} is missing or stale: run `SMTP_FUZZ_WRITE_CORPUS=1 cargo test -p smtp-transport --test fuzz_driver`",
            path.display()
        );
    }
}

#[test]
fn replay_corpus() {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(corpus()).expect("fuzz/corpus/driver").map(|entry| entry.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let result = std::panic::catch_unwind(|| driver(&data));
        assert!(result.is_ok(), "the driver fuzz body failed on {}", file.display());
    }
}

/// Inputs from xorshift64, each a seed's header followed by random choices: the same ones every run.
#[test]
fn pseudo_random_inputs() {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = seeds();
    for round in 0..3000 {
        let mut data = seeds[round % seeds.len()].1.clone();
        data[0] = next() as u8;
        // Mostly cooperative: a zero byte is the honest default; the rest picks a fault.
        let len = 20 + (next() % 400) as usize;
        data.extend((0..len).map(|_| if next() % 3 == 0 { next() as u8 } else { 0 }));
        let result = std::panic::catch_unwind(|| driver(&data));
        assert!(result.is_ok(), "the driver fuzz body failed on {data:?}");
    }
}
