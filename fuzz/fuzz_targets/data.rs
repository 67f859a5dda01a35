//! The DATA and BDAT encoder the session runs (`smtp::data::Encoder` and
//! `Slices`), fed the message in slices cut anywhere.
//!
//! Checked for every message and every slicing:
//! - what a receiver unstuffs from the DATA body (`unstuff`, RFC 5321
//!   4.5.2) is exactly the message with CRLF line endings, as the plain
//!   byte-at-a-time rule `smtp::data::crlf_reference` states it (CRLF
//!   stays, a bare CR or LF becomes CRLF, a last line without an ending
//!   gets one), the same rule the unit tests use; the BDAT bytes are that
//!   same normalised message;
//! - the DATA body has no bare CR or LF and exactly one end-of-data line, at
//!   the very end: no SMTP smuggling sequence survives encoding, wherever
//!   the slices cut a CRLF or put a dot;
//! - `Slices` gives exactly one last slice, at the end, and no empty slice
//!   before it; `wire_size` is the length of the BDAT bytes.
//!
//! Input layout: byte 0 is the `Slices` size (1 to 256), byte 1 seeds the
//! cut points of a direct `Encoder` run, the rest is the message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use securesmtp::smtp::data::{crlf_reference, unstuff, wire_size, Encoder, Slices};

fuzz_target!(|data: &[u8]| {
    let [size, seed, msg @ ..] = data else {
        return;
    };
    let normalised = crlf_reference(msg);

    let data_wire = sliced(Encoder::for_data(), msg, usize::from(*size) + 1);
    let bdat_wire = sliced(Encoder::for_bdat(), msg, usize::from(*size) + 1);
    assert_eq!(unstuff(&data_wire).as_deref(), Some(&normalised[..]), "DATA round trip");
    assert_eq!(bdat_wire, normalised, "BDAT bytes");
    assert_eq!(wire_size(msg), normalised.len(), "SIZE");

    let cut = cut(Encoder::for_data(), msg, *seed);
    assert_eq!(cut, data_wire, "another slicing gave other bytes");

    assert!(data_wire.ends_with(b".\r\n"));
    assert_only_crlf(&data_wire);
    // The end-of-data line is the last line and no other line is a lone dot.
    let body = &data_wire[..data_wire.len() - 3];
    assert!(body.is_empty() || body.ends_with(b"\r\n"));
    assert!(!body.starts_with(b".\r\n"));
    assert!(
        !body.windows(5).any(|w| w == b"\r\n.\r\n"),
        "end-of-data inside the body"
    );
});

/// The message through `Slices` of `size` bytes, checking the slices.
fn sliced(encoder: Encoder, msg: &[u8], size: usize) -> Vec<u8> {
    let mut slices = Slices::new(encoder, msg, size);
    let (mut joined, mut out, mut lasts) = (Vec::new(), Vec::new(), 0);
    while let Some(last) = slices.next_into(&mut out) {
        assert_eq!(lasts, 0, "a slice after the last");
        assert!(last || !out.is_empty(), "an empty slice before the last");
        lasts += usize::from(last);
        joined.extend_from_slice(&out);
    }
    assert_eq!(lasts, 1, "no last slice");
    joined
}

/// The message through one `Encoder`, cut at points drawn from `seed`
/// (often one byte apart, so CRLF pairs and dots land on every boundary).
fn cut(mut encoder: Encoder, msg: &[u8], seed: u8) -> Vec<u8> {
    let mut rng = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut rest = msg;
    while !rest.is_empty() {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let n = (1 + (rng as usize % 5)).min(rest.len());
        encoder.push(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    encoder.finish(&mut out);
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
