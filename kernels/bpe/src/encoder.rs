//! BPE encoder with SentencePiece semantics: start from characters and repeatedly merge the
//! adjacent pair whose concatenation is the best-ranked piece (lowest id = earliest merge;
//! ties: leftmost). `▁` only starts pieces, so words encode independently and each distinct
//! word is encoded once and cached.

use crate::fxhash::FxHashMap;

pub struct Encoder {
    pieces: FxHashMap<Box<[u8]>, u32>,
    unk: u32,
    cache: FxHashMap<Box<[u8]>, Box<[u32]>>,
    scratch: Vec<(usize, usize)>, // current symbols as byte ranges of the word
    word: Vec<u8>,
}

impl Encoder {
    /// `pieces[i]` is the piece with id `first_id + i`; `unk` is the id of unknown characters.
    pub fn new(pieces: Vec<Vec<u8>>, first_id: u32, unk: u32) -> Encoder {
        let mut map: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        for (i, p) in pieces.into_iter().enumerate() {
            map.entry(p.into_boxed_slice()).or_insert(first_id + i as u32);
        }
        Encoder {
            pieces: map,
            unk,
            cache: FxHashMap::default(),
            scratch: Vec::new(),
            word: Vec::new(),
        }
    }

    #[inline(never)]
    fn encode_uncached(&mut self, out: &mut Vec<u32>) {
        let w = &self.word;
        let syms = &mut self.scratch;
        syms.clear();
        let mut i = 0;
        while i < w.len() {
            let b = w[i];
            let n = if b < 0x80 {
                1
            } else if b >= 0xf0 {
                4
            } else if b >= 0xe0 {
                3
            } else {
                2
            };
            let e = (i + n).min(w.len());
            syms.push((i, e));
            i = e;
        }
        loop {
            let mut best_rank = u32::MAX;
            let mut best_at = usize::MAX;
            for k in 1..syms.len() {
                if let Some(&rank) = self.pieces.get(&w[syms[k - 1].0..syms[k].1]) {
                    if rank < best_rank {
                        best_rank = rank;
                        best_at = k;
                    }
                }
            }
            if best_at == usize::MAX {
                break;
            }
            syms[best_at - 1].1 = syms[best_at].1;
            syms.remove(best_at);
        }
        let mut prev_unk = false;
        for &(s, e) in syms.iter() {
            match self.pieces.get(&w[s..e]) {
                Some(&id) => {
                    out.push(id);
                    prev_unk = false;
                }
                None => {
                    // Like SentencePiece, a run of unknown characters becomes one <unk>.
                    if !prev_unk {
                        out.push(self.unk);
                    }
                    prev_unk = true;
                }
            }
        }
    }

    /// Appends the ids of one word (bytes without the `▁` marker) to `out`.
    #[inline(never)]
    pub fn encode_word(&mut self, word: &[u8], out: &mut Vec<u32>) {
        if let Some(ids) = self.cache.get(word) {
            out.extend_from_slice(ids);
            return;
        }
        self.word.clear();
        self.word.extend_from_slice("\u{2581}".as_bytes());
        self.word.extend_from_slice(word);
        let start = out.len();
        self.encode_uncached(out);
        self.cache.insert(
            word.to_vec().into_boxed_slice(),
            out[start..].to_vec().into_boxed_slice(),
        );
    }

    /// Encodes normalized lines (words separated by single spaces) into `ids`, with
    /// `offsets[i]..offsets[i+1]` the ids of line i.
    pub fn encode_lines(&mut self, text: &[u8], ids: &mut Vec<u32>, offsets: &mut Vec<u32>) {
        ids.clear();
        offsets.clear();
        offsets.push(0);
        if text.is_empty() {
            return;
        }
        for line in text.split(|&b| b == b'\n') {
            for w in line.split(|&b| b == b' ') {
                if !w.is_empty() {
                    self.encode_word(w, ids);
                }
            }
            offsets.push(ids.len() as u32);
        }
    }
}
