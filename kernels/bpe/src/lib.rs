//! SentencePiece-compatible BPE for virtex: a trainer and an encoder, as a single-threaded
//! WASM module. Strings cross the boundary as UTF-8 bytes in buffers the host gets from
//! `bpe_alloc` and returns with `bpe_free`; results stay in module-owned buffers read through
//! the `*_ptr` / `*_len` exports until the next call.

mod candheap;
mod encoder;
mod fxhash;
mod heapsel;
mod script;
mod stdmap;
mod trainer;

use encoder::Encoder;

static mut RESULT: Vec<u8> = Vec::new();
static mut IDS: Vec<u32> = Vec::new();
static mut OFFSETS: Vec<u32> = Vec::new();
static mut ENCODER: Option<Encoder> = None;

/// Allocates `len` bytes for the host to fill.
#[no_mangle]
pub extern "C" fn bpe_alloc(len: usize) -> *mut u8 {
    let mut v: Vec<u8> = Vec::with_capacity(len.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Frees a buffer from `bpe_alloc`.
#[no_mangle]
pub unsafe extern "C" fn bpe_free(ptr: *mut u8, len: usize) {
    drop(Vec::from_raw_parts(ptr, 0, len.max(1)));
}

unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Trains on normalized text (one caption per line, words separated by spaces). Flags: bit 0
/// keeps digits apart from punctuation, bit 1 replays SentencePiece's candidate window.
/// On success returns the number of pieces and leaves "piece\tfreq\n" lines in the result
/// buffer; on failure returns -1 and leaves the message there.
#[no_mangle]
pub unsafe extern "C" fn bpe_train(
    text: *const u8,
    text_len: usize,
    vocab_size: u32,
    n_meta: u32,
    max_piece_len: u32,
    coverage: f64,
    flags: u32,
) -> i32 {
    let cfg = trainer::Config {
        vocab_size: vocab_size as usize,
        n_meta: n_meta as usize,
        max_piece_len: max_piece_len as usize,
        coverage,
        digits_apart: flags & 1 != 0,
        spm_active_set: flags & 2 != 0,
    };
    RESULT.clear();
    match trainer::train(bytes(text, text_len), cfg) {
        Ok(pieces) => {
            for p in &pieces {
                RESULT.extend_from_slice(&p.bytes);
                RESULT.push(b'\t');
                RESULT.extend_from_slice(p.freq.to_string().as_bytes());
                RESULT.push(b'\n');
            }
            pieces.len() as i32
        }
        Err(msg) => {
            RESULT.extend_from_slice(msg.as_bytes());
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn bpe_result_ptr() -> *const u8 {
    RESULT.as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn bpe_result_len() -> usize {
    RESULT.len()
}

/// Loads the encoder's vocabulary: pieces separated by '\n', the first having id `first_id`;
/// `unk` is the id given to unknown characters. Returns the number of pieces.
#[no_mangle]
pub unsafe extern "C" fn bpe_load_vocab(text: *const u8, len: usize, first_id: u32, unk: u32) -> u32 {
    let pieces: Vec<Vec<u8>> = bytes(text, len)
        .split(|&b| b == b'\n')
        .map(|p| p.to_vec())
        .collect();
    let n = pieces.len() as u32;
    ENCODER = Some(Encoder::new(pieces, first_id, unk));
    n
}

/// Encodes normalized lines ('\n'-separated, words separated by single spaces) with the
/// loaded vocabulary. Returns the number of lines (or -1 without a vocabulary); ids and line
/// offsets are read through `bpe_ids_ptr/len` and `bpe_offsets_ptr/len`.
#[no_mangle]
pub unsafe extern "C" fn bpe_encode(text: *const u8, len: usize) -> i32 {
    match ENCODER.as_mut() {
        Some(enc) => {
            enc.encode_lines(bytes(text, len), &mut IDS, &mut OFFSETS);
            OFFSETS.len() as i32 - 1
        }
        None => -1,
    }
}

#[no_mangle]
pub unsafe extern "C" fn bpe_ids_ptr() -> *const u32 {
    IDS.as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn bpe_ids_len() -> usize {
    IDS.len()
}

#[no_mangle]
pub unsafe extern "C" fn bpe_offsets_ptr() -> *const u32 {
    OFFSETS.as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn bpe_offsets_len() -> usize {
    OFFSETS.len()
}
