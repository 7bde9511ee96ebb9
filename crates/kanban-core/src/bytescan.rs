//! Byte scans of text on the output paths, eight bytes at a time: most
//! text holds nothing to escape, and one word test per eight bytes is far
//! cheaper than a test per byte. In this crate for its opt-level (see the
//! workspace's release profile).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lanes of `v` that are zero. Exact for the lowest
/// such lane; a lane above it may be flagged too, so hits are rechecked.
fn zero_lanes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGH
}

/// Lanes of `x` below 0x20 (same caveat).
fn c0_lanes(x: u64) -> u64 {
    x.wrapping_sub(ONES * 0x20) & !x & HIGH
}

fn lanes_equal(x: u64, byte: u8) -> u64 {
    zero_lanes(x ^ (ONES * u64::from(byte)))
}

/// Index of the first byte of `bytes` at or after `from` that `hit`
/// accepts; `word_may_hit` must flag every word holding such a byte.
fn first(
    bytes: &[u8],
    from: usize,
    word_may_hit: impl Fn(u64) -> u64,
    hit: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        if word_may_hit(u64::from_le_bytes(word)) != 0
            && let Some(j) = bytes[i..i + 8].iter().position(|&b| hit(b))
        {
            return Some(i + j);
        }
        i += 8;
    }
    bytes.get(i..)?.iter().position(|&b| hit(b)).map(|j| i + j)
}

/// Index of the first byte at or after `from` that a JSON string must
/// escape: `"`, `\` or a C0 control.
pub fn first_json_escape(bytes: &[u8], from: usize) -> Option<usize> {
    first(
        bytes,
        from,
        |x| c0_lanes(x) | lanes_equal(x, b'"') | lanes_equal(x, b'\\'),
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

/// Whether `s` holds a byte that can begin a control character: a C0
/// byte, DEL, or 0xC2 (the UTF-8 lead byte of the C1 range and of some
/// printable Latin-1 signs, which the caller then decodes).
pub fn may_hold_control(s: &str) -> bool {
    first(
        s.as_bytes(),
        0,
        |x| c0_lanes(x) | lanes_equal(x, 0x7f) | lanes_equal(x, 0xc2),
        |b| b < 0x20 || b == 0x7f || b == 0xc2,
    )
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position and every byte value against the plain definition.
    #[test]
    fn scans_agree_with_a_byte_loop() {
        let plain = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let want = bytes.iter().position(|&c| plain(c));
                    assert_eq!(
                        first_json_escape(&bytes, 0),
                        want,
                        "len {len} at {at} byte {b:#x}"
                    );
                    if let Some(w) = want {
                        assert_eq!(first_json_escape(&bytes, w + 1), None);
                    }
                }
            }
        }
        // Bytes just above the thresholds, around a hit: no false answer.
        let s = [0xffu8, 0x80, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x1f, 0x22];
        assert_eq!(first_json_escape(&s, 0), Some(7));
        assert_eq!(first_json_escape(&s, 8), Some(8));
    }

    #[test]
    fn control_leads_are_found_anywhere() {
        assert!(!may_hold_control("plain text, é ✓ — long enough for words"));
        assert!(may_hold_control("a long line of text ending in a tab\t"));
        assert!(may_hold_control("del \u{7f} inside"));
        assert!(may_hold_control("csi \u{9b} inside a long line"));
        assert!(may_hold_control("© sign"));
        assert!(!may_hold_control(""));
    }
}
