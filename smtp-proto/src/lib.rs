//! A sans-IO SMTP client: bytes in, command bytes, events and deadlines out.
//!
//! This crate does no IO and reads no clock. It never opens a socket, never spawns a task and never calls
//! `Instant::now()`: the caller feeds it the server's bytes and the current time, and pulls out the bytes to
//! write, the events to act on and the next deadline. Drivers for blocking sockets (`smtp-blocking`) and for
//! futures-io runtimes (`smtp-smol`) are thin loops around it.
//!
//! The crate is `#![no_std]` with `alloc`; the default `std` feature only adds `std::error::Error` impls.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod address;
pub mod body;
pub mod command;
pub mod ehlo;
pub mod reply;
pub mod sasl;
