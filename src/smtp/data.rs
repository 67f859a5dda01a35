//! The message on the wire: line endings (RFC 5321 2.3.8), transparency
//! (dot-stuffing, RFC 5321 4.5.2) and the end-of-data marker for DATA, and
//! the same bytes unstuffed for BDAT (RFC 3030).
//!
//! Stock `hg email` hands over a message with bare LF line endings, which
//! RFC 5321 forbids and which hardened servers refuse or rewrite. Every line
//! goes out ending in CRLF here: CRLF stays, a bare LF becomes CRLF, and a
//! bare CR becomes CRLF too, because RFC 5321 allows CR and LF only as a
//! pair. Normalising bare CR and LF also means no SMTP-smuggling sequence
//! (`\n.\n`, `\n.\r\n`, `\r\n.\n`, `\r.\r`, ...) can survive into the
//! wire: the only end-of-data a receiver can see is the one appended here.
//!
//! DATA and BDAT deliver the same bytes: a message whose last line has no
//! ending gets a final CRLF in both.
//!
//! The message can be a 50 MB patch series, so the encoders make one pass
//! and (almost always) one allocation, copying runs between line endings
//! with `extend_from_slice` rather than pushing byte by byte.
//!
//! Left out: BINARYMIME (RFC 3030 3), which would send bare bytes unchanged,
//! and line-length limits (RFC 5321 4.5.3.1.6): `hg email` already encodes
//! long patch lines, and rewrapping here would corrupt a patch.

/// The end-of-data line that follows the last CRLF of a DATA body.
const END_OF_DATA: &[u8] = b".\r\n";

/// The size of the message on the wire as RFC 1870 counts it for `SIZE=`:
/// with CRLF line endings as [`Encoder::for_bdat`] writes them, and without
/// dot-stuffing or the end-of-data line.
pub fn wire_size(msg: &[u8]) -> usize {
    let mut size = 0usize;
    let mut rest = msg;
    while !rest.is_empty() {
        let end = find_line_end(rest);
        size += end.unwrap_or(rest.len()) + 2;
        rest = match end {
            Some(end) if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') => {
                &rest[end + 2..]
            }
            Some(end) => &rest[end + 1..],
            None => &[],
        };
    }
    size
}

/// Room for a slice plus the CRs added to the bare-LF endings of lines down
/// to 16 bytes on average (patches average 30 to 40) and a final CRLF.
fn encoded_capacity(len: usize) -> usize {
    len.saturating_add(len / 16).saturating_add(8)
}

/// The index of the first CR or LF, eight bytes at a time: the message can be
/// tens of megabytes and its lines are short, so this is the hot loop.
fn find_line_end(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Sets the high bit of each byte of `x` equal to `b` (the classic
    // "has zero byte" test on `x ^ b`). Bits above a true match can be set
    // spuriously, so only the lowest flag is meaningful; that is the one
    // used below.
    fn matches(x: u64, b: u8) -> u64 {
        let y = x ^ (ONES * u64::from(b));
        y.wrapping_sub(ONES) & !y & HIGH
    }
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let found = matches(x, b'\n') | matches(x, b'\r');
        if found != 0 {
            // Little-endian: the lowest set bit is in the first matching byte.
            return Some(i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let start = hay.len() - tail.len();
    tail.iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|p| start + p)
}

/// The message on the wire, fed in slices of any size: the session encodes
/// a large message a bounded slice at a time instead of holding a whole
/// normalised copy.
///
/// CRLF stays CRLF; a bare LF and a bare CR (one not followed by LF) each
/// become CRLF; for DATA a line starting with `.` gets another `.` in front
/// and the end-of-data line `.\r\n` follows. A message whose last line has
/// no ending gets CRLF before that (and for BDAT too). All other bytes, NUL
/// included, pass through unchanged. What a slice ends in carries over to
/// the next: a CR whose LF may start the next slice, and whether the next
/// byte starts a line (and so may need a stuffing dot).
#[derive(Clone, Debug)]
pub struct Encoder {
    stuff: bool,
    line_start: bool,
    /// The last slice ended in a CR already written as CRLF: an LF at the
    /// start of the next slice belongs to it.
    skip_lf: bool,
}

impl Encoder {
    /// Dot-stuffing and the end-of-data line: the DATA body.
    pub fn for_data() -> Encoder {
        Encoder {
            stuff: true,
            line_start: true,
            skip_lf: false,
        }
    }

    /// CRLF normalisation only: the BDAT chunks.
    pub fn for_bdat() -> Encoder {
        Encoder {
            stuff: false,
            ..Encoder::for_data()
        }
    }

    /// Append the encoding of the next slice of the message to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        if std::mem::take(&mut self.skip_lf) && input[0] == b'\n' {
            input = &input[1..];
        }
        out.reserve(encoded_capacity(input.len()));
        while !input.is_empty() {
            if self.line_start && self.stuff && input[0] == b'.' {
                out.push(b'.');
            }
            let Some(end) = find_line_end(input) else {
                out.extend_from_slice(input);
                self.line_start = false;
                return;
            };
            out.extend_from_slice(&input[..end]);
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
            input = match (input[end], input.get(end + 1)) {
                (b'\r', Some(b'\n')) => &input[end + 2..],
                (b'\r', None) => {
                    self.skip_lf = true;
                    &[]
                }
                _ => &input[end + 1..],
            };
        }
    }

    /// Append what ends the message: CRLF after a last line without one,
    /// and for DATA the end-of-data line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
        }
        if self.stuff {
            out.extend_from_slice(END_OF_DATA);
        }
    }
}

/// A message encoded by an [`Encoder`] one bounded slice at a time, for the
/// DATA body and the BDAT chunks alike.
pub struct Slices<'a> {
    encoder: Encoder,
    rest: std::iter::Peekable<std::slice::Chunks<'a, u8>>,
    done: bool,
}

impl<'a> Slices<'a> {
    /// `message` in slices of `size` bytes before encoding.
    pub fn new(encoder: Encoder, message: &'a [u8], size: usize) -> Slices<'a> {
        Slices {
            encoder,
            rest: message.chunks(size).peekable(),
            done: false,
        }
    }

    /// Replace `out` with the next encoded slice and say whether it is the
    /// last (which carries the message's ending); `None` once that is out.
    /// A slice that encodes to nothing (only the LF of a CRLF split across
    /// slices) is skipped, so only the last may be empty (an empty BDAT
    /// message).
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Option<bool> {
        if self.done {
            return None;
        }
        loop {
            out.clear();
            if let Some(slice) = self.rest.next() {
                self.encoder.push(slice, out);
            }
            let last = self.rest.peek().is_none();
            if last {
                self.encoder.finish(out);
                self.done = true;
            }
            if last || !out.is_empty() {
                return Some(last);
            }
        }
    }
}

/// What a receiver reads from a DATA body (RFC 5321 4.5.2): the message
/// (with CRLF line endings), or `None` when the body does not end with the end-of-data
/// line or has bytes after it. Lines are split at CRLF only; a leading `.`
/// is removed from each line. For tests and fuzzing.
pub fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(wire.len());
    let mut rest = wire;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            return rest.is_empty().then_some(out);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
}

/// CRLF normalisation a byte at a time, the plainest statement of the rule
/// the [`Encoder`] follows at speed: CRLF stays, a bare CR or LF becomes
/// CRLF, a last line without an ending gets one. The unit tests here and
/// the `data` fuzz target both hold the encoder to it. For tests and
/// fuzzing.
pub fn crlf_reference(msg: &[u8]) -> Vec<u8> {
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

/// Whether the message has any byte >= 0x80, and so needs `BODY=8BITMIME`
/// (RFC 6152).
pub fn is_eight_bit(msg: &[u8]) -> bool {
    !msg.is_ascii()
}

/// Whether an address or header value needs SMTPUTF8 (RFC 6531): it has a
/// non-ASCII character.
pub fn needs_smtputf8(s: &str) -> bool {
    !s.is_ascii()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `msg` through [`Slices`] in slices of `size`, joined.
    fn sliced(encoder: Encoder, msg: &[u8], size: usize) -> Vec<u8> {
        let mut slices = Slices::new(encoder, msg, size);
        let (mut joined, mut out) = (Vec::new(), Vec::new());
        while slices.next_into(&mut out).is_some() {
            joined.extend_from_slice(&out);
        }
        joined
    }

    /// The DATA body of `msg` as the session writes it (one slice).
    fn data_wire(msg: &[u8]) -> Vec<u8> {
        sliced(Encoder::for_data(), msg, msg.len().max(1))
    }

    /// The BDAT bytes of `msg` as the session writes them (one slice).
    fn bdat_wire(msg: &[u8]) -> Vec<u8> {
        sliced(Encoder::for_bdat(), msg, msg.len().max(1))
    }

    #[track_caller]
    fn stuffed(msg: &str, wire: &str) {
        assert_eq!(
            String::from_utf8(data_wire(msg.as_bytes())).unwrap(),
            wire,
            "message {msg:?}"
        );
    }

    #[test]
    fn bare_lf_line_endings_become_crlf() {
        stuffed("Subject: x\n\nbody\n", "Subject: x\r\n\r\nbody\r\n.\r\n");
        assert_eq!(bdat_wire(b"a\nb\n"), b"a\r\nb\r\n");
    }

    #[test]
    fn crlf_line_endings_stay_as_they_are() {
        stuffed("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
        assert_eq!(bdat_wire(b"a\r\nb\r\n"), b"a\r\nb\r\n");
    }

    #[test]
    fn bare_cr_becomes_crlf() {
        stuffed("a\rb\r", "a\r\nb\r\n.\r\n");
        stuffed("a\r\rb", "a\r\n\r\nb\r\n.\r\n");
        stuffed("a\n\r\nb", "a\r\n\r\nb\r\n.\r\n");
    }

    #[test]
    fn lines_starting_with_a_dot_get_another_dot() {
        stuffed(".\n", "..\r\n.\r\n");
        stuffed(
            ".hidden\n..two\nnot.first\n",
            "..hidden\r\n...two\r\nnot.first\r\n.\r\n",
        );
        stuffed("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(bdat_wire(b".a\n"), b".a\r\n");
    }

    #[test]
    fn final_line_without_a_line_ending_gets_crlf() {
        stuffed("last line", "last line\r\n.\r\n");
        stuffed(".", "..\r\n.\r\n");
        assert_eq!(bdat_wire(b"last line"), b"last line\r\n");
    }

    #[test]
    fn empty_message_is_just_the_terminator() {
        assert_eq!(data_wire(b""), b".\r\n");
        assert_eq!(bdat_wire(b""), b"");
        assert_eq!(unstuff(b".\r\n"), Some(vec![]));
    }

    #[test]
    fn nul_bytes_pass_through_unchanged() {
        assert_eq!(data_wire(b"a\0b\n\0\n"), b"a\0b\r\n\0\r\n.\r\n");
    }

    #[test]
    fn smtp_smuggling_sequences_cannot_end_the_data_early() {
        let attacks: [&[u8]; 8] = [
            b"a\n.\nMAIL FROM:<x>\n",
            b"a\n.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n.\nMAIL FROM:<x>\r\n",
            b"a\r.\rMAIL FROM:<x>\r",
            b"a\r\n.\rMAIL FROM:<x>\r\n",
            b"a\r.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n.\r\nMAIL FROM:<x>\r\n",
            b"a\r\n\x00.\r\nMAIL FROM:<x>\r\n",
        ];
        for msg in attacks {
            for size in 1..=msg.len() {
                let wire = sliced(Encoder::for_data(), msg, size);
                let first_end = wire.windows(5).position(|w| w == b"\r\n.\r\n");
                assert_eq!(first_end, Some(wire.len() - 5), "{msg:?} / {size}");
                assert!(!wire.starts_with(b".\r\n"), "{msg:?}");
                assert_eq!(unstuff(&wire).unwrap(), crlf_reference(msg), "{msg:?}");
            }
        }
        assert_eq!(
            data_wire(b"a\r\n.\r\nMAIL FROM:<x>\r\n"),
            b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"
        );
        assert_eq!(
            data_wire(b"a\r.\rMAIL FROM:<x>"),
            b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"
        );
    }

    #[test]
    fn unstuff_refuses_a_body_without_terminator_or_with_trailing_bytes() {
        assert_eq!(unstuff(b""), None);
        assert_eq!(unstuff(b"a\r\n"), None);
        assert_eq!(unstuff(b"a\r\n."), None);
        assert_eq!(unstuff(b"a\r\n.\r\nb\r\n"), None);
        assert_eq!(unstuff(b"..a\r\n.\r\n"), Some(b".a\r\n".to_vec()));
    }

    #[test]
    fn eight_bit_bodies_and_non_ascii_addresses_are_detected() {
        assert!(!is_eight_bit(b"plain ascii\r\n\0"));
        assert!(is_eight_bit("caf\u{e9}".as_bytes()));
        assert!(is_eight_bit(b"\x80"));
        assert!(!needs_smtputf8("alice@example.org"));
        assert!(needs_smtputf8("j\u{f6}rg@example.org"));
    }

    #[test]
    fn a_large_slice_is_encoded_in_one_allocation() {
        let line = b"+    let x = some_function(argument_one, argument_two);\n";
        let msg: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
        let mut out = Vec::new();
        Encoder::for_data().push(&msg, &mut out);
        assert_eq!(out.capacity(), encoded_capacity(msg.len()));
        assert_eq!(bdat_wire(&msg), crlf_reference(&msg));
    }

    #[test]
    fn message_of_only_line_endings_stays_correct() {
        let msg = vec![b'\n'; 100_000];
        let wire = data_wire(&msg);
        assert_eq!(wire.len(), 200_003);
        assert_eq!(unstuff(&wire).unwrap(), crlf_reference(&msg));
    }

    #[test]
    fn line_ending_search_finds_the_first_cr_or_lf_at_any_offset() {
        for len in 0..40 {
            for at in 0..len {
                for byte in [b'\r', b'\n'] {
                    let mut hay = vec![b'x'; len];
                    hay[at] = byte;
                    if at + 1 < len {
                        hay[at + 1] = b'\n';
                    }
                    assert_eq!(find_line_end(&hay), Some(at), "len {len} at {at}");
                }
            }
            assert_eq!(find_line_end(&vec![0x8d; len]), None);
            assert_eq!(find_line_end(&vec![0x0b; len]), None);
        }
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        // Arbitrary bytes rarely contain interesting line structure, so mix
        // in the pieces that matter.
        let piece = prop_oneof![
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b".".to_vec()),
            Just(b"\0".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..48).prop_map(|p| p.concat())
    }

    /// `msg` encoded by an [`Encoder`] fed the slices that `cuts` marks.
    fn streamed(mut enc: Encoder, msg: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (msg.len() + 1)).collect();
        points.push(0);
        points.push(msg.len());
        points.sort_unstable();
        let mut out = Vec::new();
        for w in points.windows(2) {
            enc.push(&msg[w[0]..w[1]], &mut out);
        }
        enc.finish(&mut out);
        out
    }

    #[test]
    fn a_cr_at_a_slice_end_and_a_dot_at_a_slice_start_carry_over() {
        assert_eq!(
            streamed(Encoder::for_data(), b"a\r\n.b", &[2]),
            b"a\r\n..b\r\n.\r\n"
        );
        assert_eq!(
            streamed(Encoder::for_data(), b"a\r.b", &[2]),
            b"a\r\n..b\r\n.\r\n"
        );
        assert_eq!(
            streamed(Encoder::for_data(), b"a\r\r\n", &[2, 3]),
            b"a\r\n\r\n.\r\n"
        );
        assert_eq!(streamed(Encoder::for_data(), b"ab.", &[2]), b"ab.\r\n.\r\n");
        assert_eq!(streamed(Encoder::for_bdat(), b"", &[]), b"");
        assert_eq!(streamed(Encoder::for_bdat(), b"x\r", &[1]), b"x\r\n");
    }

    proptest! {
        #[test]
        fn a_receiver_reads_the_normalised_message_for_any_slicing(
            m in message(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let normalised = crlf_reference(&m);
            prop_assert_eq!(unstuff(&streamed(Encoder::for_data(), &m, &cuts)), Some(normalised.clone()));
            prop_assert_eq!(streamed(Encoder::for_bdat(), &m, &cuts), normalised);
        }

        #[test]
        fn slices_join_to_the_whole_encoding(m in message(), size in 1usize..9) {
            for encoder in [Encoder::for_data(), Encoder::for_bdat()] {
                let whole = streamed(encoder.clone(), &m, &[]);
                let mut slices = Slices::new(encoder, &m, size);
                let (mut joined, mut out, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
                while let Some(last) = slices.next_into(&mut out) {
                    prop_assert!(last || !out.is_empty());
                    joined.extend_from_slice(&out);
                    lasts.push(last);
                }
                prop_assert_eq!(joined, whole);
                prop_assert_eq!(lasts.iter().filter(|&&l| l).count(), 1);
                prop_assert_eq!(lasts.last(), Some(&true));
            }
        }

        #[test]
        fn wire_size_is_the_length_of_the_normalised_message(m in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(wire_size(&m), bdat_wire(&m).len());
        }

        #[test]
        fn unstuffing_works_for_arbitrary_bytes(m in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(unstuff(&data_wire(&m)), Some(crlf_reference(&m)));
        }

        #[test]
        fn end_of_data_appears_only_at_the_end(m in message(), size in 1usize..9) {
            let wire = sliced(Encoder::for_data(), &m, size);
            prop_assert!(wire.ends_with(b".\r\n"));
            if wire.len() > 3 {
                prop_assert!(wire.ends_with(b"\r\n.\r\n"));
                prop_assert_eq!(
                    wire.windows(5).position(|w| w == b"\r\n.\r\n"),
                    Some(wire.len() - 5)
                );
                prop_assert!(!wire.starts_with(b".\r\n"));
            }
        }

        #[test]
        fn every_cr_and_lf_in_the_wire_is_part_of_a_crlf_pair(m in message(), size in 1usize..9) {
            for data in [sliced(Encoder::for_data(), &m, size), sliced(Encoder::for_bdat(), &m, size)] {
                for (i, &b) in data.iter().enumerate() {
                    if b == b'\r' {
                        prop_assert_eq!(data.get(i + 1), Some(&b'\n'));
                    }
                    if b == b'\n' {
                        prop_assert!(i > 0 && data[i - 1] == b'\r');
                    }
                }
            }
        }
    }
}
