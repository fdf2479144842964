//! Shared by the end-to-end tests: running the binary; [`MultiServer`] (from the testkit) for several
//! connections.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `smtp-send` with `args`, `stdin` on its standard input.
pub fn run_stdin(args: &[&str], stdin: &[u8]) -> Output {
    run_env(args, &[], stdin)
}

/// Runs `smtp-send` with `args`, the variables `env` added to its environment, `stdin` on its standard
/// input.
pub fn run_env(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smtp-send");
    // The binary may exit before reading (a usage error): a broken pipe is not the test's concern.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    child.wait_with_output().expect("wait for smtp-send")
}

/// Runs `smtp-send` with `args` and an empty standard input.
pub fn run(args: &[&str]) -> Output {
    run_stdin(args, b"")
}

/// The JSON object on stdout; panics with stdout and stderr when there is none.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout and stderr, for assertion messages.
pub fn both(out: &Output) -> String {
    format!("stdout: {}\nstderr: {}", stdout(out), stderr(out))
}

/// A short message with LF line ends (the client makes them CRLF).
pub const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\nSubject: hi\n\nHello.\n";

#[allow(unused_imports)] // not every test file uses them
pub use smtp_testkit::multi::{Fault, MultiServer};
