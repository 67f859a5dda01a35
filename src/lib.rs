//! The core of securesmtp: an SMTP submission client that verifies the
//! server inside the TLS handshake, before any credential or message is sent.
//!
//! Four floors, every dependency pointing down:
//!
//! - `python` (feature `python`): the PyO3 binding, the only pyo3 user;
//! - [`settings`]: hgrc values validated into a session config;
//! - [`session`]: the send engine in one folder: the SMTP state machine
//!   (greeting, EHLO, STARTTLS, AUTH, a series streamed with PIPELINING and
//!   CHUNKING or in lock-step, QUIT), its reply queue ([`session::queue`]),
//!   and the channel it writes through, which demands proof of a verified
//!   handshake for anything past the cleartext phase;
//! - [`transport`]: sockets, TLS records, timeouts, interrupts: the only I/O,
//!   behind the `Transport` trait;
//! - [`smtp`] (the wire, pure), [`tls`] (trust, pins, verifier, report) and
//!   [`error`].
//!
//! `cargo test` needs no Python: the binding is behind the `python` feature,
//! which maturin turns on.

#![cfg_attr(not(feature = "python"), forbid(unsafe_code))]

pub mod error;
#[cfg(feature = "python")]
mod python;
pub mod session;
pub mod settings;
pub mod smtp;
pub mod tls;
pub mod transport;
