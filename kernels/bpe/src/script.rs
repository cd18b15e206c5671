//! Coarse Unicode script classes for the "one script per piece" rule of SentencePiece:
//! a piece never mixes letters of one script with those of another, nor with digits or
//! punctuation (so no `dog?` pieces).

/// No script: the `▁` word-start marker.
pub const ANY: u32 = 0;
/// Combining marks take the script of the character before them.
pub const INHERITED: u32 = 1;
/// Punctuation, symbols, spaces (Unicode script "Common").
pub const COMMON: u32 = 2;
/// ASCII / full-width decimal digits (Common in Unicode; split from punctuation on request).
pub const DIGIT: u32 = 3;
pub const LATIN: u32 = 4;
pub const GREEK: u32 = 5;
pub const CYRILLIC: u32 = 6;
pub const HAN: u32 = 7; // Han, Hiragana, Katakana (SentencePiece merges the three)
pub const HANGUL: u32 = 8;

/// The SentencePiece word-start marker `▁` (U+2581).
pub const WS_CHAR: u32 = 0x2581;

fn in_ranges(c: u32, ranges: &[(u32, u32)]) -> bool {
    ranges.iter().any(|&(lo, hi)| c >= lo && c <= hi)
}

/// Script class of one code point. Unlisted scripts get one class per 128-code-point block,
/// which keeps letters of different alphabets apart.
pub fn script_of(c: u32) -> u32 {
    if c == WS_CHAR {
        return ANY;
    }
    if (0x30..=0x39).contains(&c) || (0xff10..=0xff19).contains(&c) {
        return DIGIT;
    }
    if c < 0x80 {
        let b = c as u8;
        return if b.is_ascii_alphabetic() { LATIN } else { COMMON };
    }
    if in_ranges(
        c,
        &[
            (0x300, 0x36f),
            (0x1ab0, 0x1aff),
            (0x1dc0, 0x1dff),
            (0x20d0, 0x20ff),
            (0xfe00, 0xfe0f),
            (0xfe20, 0xfe2f),
        ],
    ) {
        return INHERITED;
    }
    if c == 0xaa || c == 0xba || (0xc0..=0x24f).contains(&c) && c != 0xd7 && c != 0xf7 {
        return LATIN;
    }
    if in_ranges(
        c,
        &[
            (0x250, 0x2af),
            (0x1d00, 0x1d25),
            (0x1e00, 0x1eff),
            (0x2c60, 0x2c7f),
            (0xa720, 0xa7ff),
            (0xab30, 0xab6f),
            (0xff21, 0xff3a),
            (0xff41, 0xff5a),
            (0xfb00, 0xfb06),
        ],
    ) {
        return LATIN;
    }
    if in_ranges(c, &[(0x370, 0x3ff), (0x1f00, 0x1fff)]) {
        return GREEK;
    }
    if in_ranges(
        c,
        &[
            (0x400, 0x52f),
            (0x2de0, 0x2dff),
            (0xa640, 0xa69f),
            (0x1c80, 0x1c8f),
        ],
    ) {
        return CYRILLIC;
    }
    if in_ranges(
        c,
        &[
            (0x3040, 0x30ff),
            (0x31f0, 0x31ff),
            (0x3400, 0x4dbf),
            (0x4e00, 0x9fff),
            (0xf900, 0xfaff),
            (0xff66, 0xff9f),
            (0x20000, 0x3134f),
        ],
    ) {
        return HAN;
    }
    if in_ranges(
        c,
        &[
            (0x1100, 0x11ff),
            (0x3130, 0x318f),
            (0xac00, 0xd7af),
            (0xffa0, 0xffdc),
        ],
    ) {
        return HANGUL;
    }
    if in_ranges(
        c,
        &[
            (0x80, 0xbf),
            (0xd7, 0xd7),
            (0xf7, 0xf7),
            (0x2b0, 0x2ff),
            (0x2000, 0x2bff),
            (0x2e00, 0x2e7f),
            (0x3000, 0x303f),
            (0xfe10, 0xfe1f),
            (0xfe30, 0xfe6f),
            (0xff00, 0xff65),
            (0xffe0, 0xffff),
            (0x1f000, 0x1faff),
        ],
    ) {
        return COMMON;
    }
    16 + (c >> 7)
}

/// Maps DIGIT to COMMON unless digits are kept apart from punctuation.
pub fn fold(s: u32, digits_apart: bool) -> u32 {
    if s == DIGIT && !digits_apart {
        COMMON
    } else {
        s
    }
}
