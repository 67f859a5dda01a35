//! The SMTP wire, pure: bytes in, values out, values in, bytes out.
//!
//! Nothing here does I/O or knows about sockets, TLS or Python; the session
//! (`crate::session`) drives these pieces over a transport. Keeping them pure
//! is what lets the tests feed raw wire strings and the fuzzer hammer the
//! parsers without a server.
//!
//! - [`reply`]: the incremental, bounded reply parser (RFC 5321 4.2).
//! - [`capability`]: what the server announced in its EHLO reply (RFC 5321
//!   4.1.1.1, with STARTTLS RFC 3207, PIPELINING RFC 2920, CHUNKING RFC 3030,
//!   8BITMIME RFC 6152, SMTPUTF8 RFC 6531, SIZE RFC 1870, AUTH RFC 4954,
//!   ENHANCEDSTATUSCODES RFC 2034).
//! - [`command`]: one value per SMTP verb, written as the exact wire line.
//! - [`auth`]: SASL for AUTH (RFC 4954): SCRAM-SHA-256, PLAIN, LOGIN,
//!   CRAM-MD5, XOAUTH2 and OAUTHBEARER, with [`scram`] and [`oauth`].
//! - [`data`]: line-ending normalisation and dot-stuffing of the message
//!   (RFC 5321 2.3.8 and 4.5.2) for DATA, and its BDAT form (RFC 3030).
//!
//! Left out: the server side of the protocol, DSN (RFC 3461), BINARYMIME,
//! and the SASL mechanisms listed as left out in [`auth`].

pub mod auth;
pub mod capability;
pub mod command;
pub mod data;
pub mod oauth;
pub mod reply;
pub mod sasl;
pub mod scram;

pub use auth::{Credentials, Exchange, Mechanism};
pub use capability::Capabilities;
pub use command::{Command, CommandError};
pub use reply::{sanitize, Limits, Reply, ReplyError, ReplyParser};
pub use sasl::SaslError;
