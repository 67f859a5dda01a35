//! The DATA encoder against its inverse and a plain reference.
//!
//! Checked for every message:
//! - `unstuff(dot_stuffed(x)) == crlf_normalised(x)`: what the receiver
//!   reads back is exactly the message with CRLF line endings;
//! - `crlf_normalised` matches a byte-at-a-time reference (CRLF stays, a bare
//!   CR or LF becomes CRLF, a last line without an ending gets one), so the
//!   word-at-a-time scanner misses no line ending;
//! - the DATA body has no bare CR or LF and exactly one end-of-data line, at
//!   the very end: no SMTP smuggling sequence survives encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use securesmtp::smtp::data::{crlf_normalised, dot_stuffed, unstuff};

fuzz_target!(|msg: &[u8]| {
    let normalised = crlf_normalised(msg);
    assert_eq!(normalised, reference(msg), "crlf_normalised differs from the reference");
    assert_eq!(crlf_normalised(&normalised), normalised, "not idempotent");

    let wire = dot_stuffed(msg);
    assert_eq!(unstuff(&wire).as_deref(), Some(&normalised[..]), "round trip failed");

    assert!(wire.ends_with(b".\r\n"));
    assert_only_crlf(&wire);
    // The end-of-data line is the last line and no other line is a lone dot.
    let body = &wire[..wire.len() - 3];
    assert!(body.is_empty() || body.ends_with(b"\r\n"));
    assert!(!body.starts_with(b".\r\n"));
    assert!(
        !body.windows(5).any(|w| w == b"\r\n.\r\n"),
        "end-of-data inside the body"
    );
});

/// CRLF stays, bare CR and bare LF become CRLF, a final CRLF is added to a
/// last line without one.
fn reference(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < msg.len() {
        match msg[i] {
            b'\r' if msg.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn assert_only_crlf(wire: &[u8]) {
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
}
