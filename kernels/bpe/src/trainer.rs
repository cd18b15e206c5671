//! BPE trainer with SentencePiece semantics: words (split at `▁`) weighted by frequency,
//! character pieces for all required characters, repeatedly merge the most frequent adjacent
//! pair (ties: fewer characters, then byte-wise smaller string), count a pair once per run of
//! overlapping occurrences ("aaa" holds one "aa"), never build a piece that mixes scripts or
//! holds `▁` past its start, skip a pair whose string is already a piece.
//!
//! Pair frequencies are maintained incrementally: each pair symbol keeps its sorted
//! occurrence list, a merge only resets the pairs next to the merged occurrences, and the best
//! candidate comes from a lazily invalidated max-heap.
//!
//! `spm_active_set` additionally replays SentencePiece 0.1.x's candidate window: every 100
//! merges only the top 5% (at least 1,000) pairs by frequency, plus pairs created since, are
//! candidates; at the cut-off ties are settled in libstdc++'s hash-map and partial_sort order.

use crate::candheap::CandHeap;
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::heapsel::heap_select;
use crate::script::{self, ANY, INHERITED, WS_CHAR};
use crate::stdmap::StdOrderMap;

const NONE: u32 = u32::MAX;
const UNK_CHAR: u32 = 0x2585;

pub struct Config {
    pub vocab_size: usize,    // total, including the meta pieces
    pub n_meta: usize,        // <unk> and the other specials, not produced here
    pub max_piece_len: usize, // in characters (SentencePiece default 16)
    pub coverage: f64,        // character coverage (1.0: every character is a piece)
    pub digits_apart: bool,   // never merge digits with punctuation
    pub spm_active_set: bool, // replay SentencePiece's candidate window
}

/// One vocabulary piece produced by training: its UTF-8 bytes and its frequency when chosen.
pub struct Piece {
    pub bytes: Vec<u8>,
    pub freq: u64,
}

struct Sym {
    left: u32,
    right: u32,
    chars: u32, // number of characters
    bytes: Vec<u8>,
    script: u32,
    has_ws: bool,
    is_unk: bool,
    fp: u64,
    freq: u64,
    positions: Vec<u64>, // sorted (sid << 32 | left << 16 | right)
    active: bool,
    in_cache: bool,
    dirty: bool,
}

#[inline]
fn mix(a: &mut u64, b: &mut u64, c: &mut u64) {
    macro_rules! step {
        ($x:ident, $y:ident, $z:ident, $op:tt, $s:expr) => {
            *$x = $x.wrapping_sub(*$y);
            *$x = $x.wrapping_sub(*$z);
            *$x ^= *$z $op $s;
        };
    }
    step!(a, b, c, >>, 43);
    step!(b, c, a, <<, 9);
    step!(c, a, b, >>, 8);
    step!(a, b, c, >>, 38);
    step!(b, c, a, <<, 23);
    step!(c, a, b, >>, 5);
    step!(a, b, c, >>, 35);
    step!(b, c, a, <<, 49);
    step!(c, a, b, >>, 11);
    step!(a, b, c, >>, 12);
    step!(b, c, a, <<, 18);
    step!(c, a, b, >>, 22);
}

/// The 64-bit fingerprint SentencePiece gives a pair symbol (Jenkins mix of the two parts).
fn fingerprint_cat(x: u64, y: u64) -> u64 {
    let mut a = x;
    let mut b = 0xe08c1d668b756f82u64;
    let mut c = y;
    mix(&mut a, &mut b, &mut c);
    c
}

/// Candidate order: higher frequency, then fewer characters, then byte-wise smaller string,
/// then the earlier-created symbol (SentencePiece scans its candidates in allocation order).
#[inline]
fn better(syms: &[Sym], a: &(u64, u32), b: &(u64, u32)) -> bool {
    if a.0 != b.0 {
        return a.0 > b.0;
    }
    let (x, y) = (&syms[a.1 as usize], &syms[b.1 as usize]);
    if x.chars != y.chars {
        return x.chars < y.chars;
    }
    match x.bytes.cmp(&y.bytes) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => a.1 < b.1,
    }
}

fn encode_pos(sid: usize, l: usize, r: usize) -> u64 {
    (sid as u64) << 32 | (l as u64) << 16 | r as u64
}

fn decode_pos(p: u64) -> (usize, usize, usize) {
    (
        (p >> 32) as usize,
        ((p >> 16) & 0xffff) as usize,
        (p & 0xffff) as usize,
    )
}

fn utf8_push(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

struct Trainer {
    cfg: Config,
    syms: Vec<Sym>,
    cache: StdOrderMap,
    char_sym: FxHashMap<u32, u32>,
    words: Vec<Vec<u32>>,
    wfreq: Vec<u64>,
    heap: CandHeap,
    order: Vec<u32>,
    dirty: Vec<u32>,
    active_list: Vec<u32>,
}

impl Trainer {
    fn get_char_symbol(&mut self, c: u32) -> u32 {
        if let Some(&id) = self.char_sym.get(&c) {
            if self.syms[id as usize].in_cache {
                return id;
            }
        }
        let mut bytes = Vec::new();
        utf8_push(&mut bytes, c);
        let id = self.syms.len() as u32;
        self.syms.push(Sym {
            left: NONE,
            right: NONE,
            chars: 1,
            bytes,
            script: script::fold(script::script_of(c), self.cfg.digits_apart),
            has_ws: c == WS_CHAR,
            is_unk: c == UNK_CHAR,
            fp: c as u64,
            freq: 0,
            positions: Vec::new(),
            active: false,
            in_cache: true,
            dirty: false,
        });
        self.char_sym.insert(c, id);
        self.cache.insert(c as u64, id);
        id
    }

    fn valid_pair(&self, l: &Sym, r: &Sym) -> bool {
        if (l.chars + r.chars) as usize > self.cfg.max_piece_len || r.has_ws {
            return false;
        }
        let (a, b) = (l.script, r.script);
        let a = if a == INHERITED { ANY } else { a };
        let b = if b == INHERITED { ANY } else { b };
        a == ANY || b == ANY || a == b
    }

    #[inline(never)]
    fn get_pair_symbol(&mut self, l: u32, r: u32) -> Option<u32> {
        if l == NONE || r == NONE {
            return None;
        }
        let (ls, rs) = (&self.syms[l as usize], &self.syms[r as usize]);
        if ls.is_unk || rs.is_unk {
            return None;
        }
        let fp = fingerprint_cat(ls.fp, rs.fp);
        if let Some(id) = self.cache.get(fp) {
            return Some(id);
        }
        if !self.valid_pair(ls, rs) {
            return None;
        }
        let mut bytes = Vec::with_capacity(ls.bytes.len() + rs.bytes.len());
        bytes.extend_from_slice(&ls.bytes);
        bytes.extend_from_slice(&rs.bytes);
        let script = if ls.script == ANY || ls.script == INHERITED {
            rs.script
        } else {
            ls.script
        };
        let sym = Sym {
            left: l,
            right: r,
            chars: ls.chars + rs.chars,
            bytes,
            script,
            has_ws: ls.has_ws,
            is_unk: false,
            fp,
            freq: 0,
            positions: Vec::new(),
            active: false,
            in_cache: true,
            dirty: false,
        };
        let id = self.syms.len() as u32;
        self.syms.push(sym);
        self.cache.insert(fp, id);
        Some(id)
    }

    /// Recomputes a pair's frequency from its occurrence list when it was reset (freq 0),
    /// dropping stale occurrences and the second of two overlapping ones.
    #[inline(never)]
    fn compute_freq(&mut self, id: u32) {
        let s = &mut self.syms[id as usize];
        if s.freq > 0 {
            return;
        }
        let (left, right) = (s.left, s.right);
        let mut prev: (i64, usize) = (-1, 0);
        let mut freq = 0u64;
        let words = &self.words;
        let wfreq = &self.wfreq;
        s.positions.retain(|&p| {
            let (sid, l, r) = decode_pos(p);
            if (sid as i64 == prev.0 && l == prev.1) || words[sid][l] != left || words[sid][r] != right {
                prev = (-1, 0);
                false
            } else {
                freq += wfreq[sid];
                prev = (sid as i64, r);
                true
            }
        });
        s.freq = freq;
    }

    fn mark_dirty(&mut self, id: u32) {
        let s = &mut self.syms[id as usize];
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(id);
        }
    }

    #[inline(never)]
    fn add_new_pair(&mut self, sid: usize, l: i64, r: i64) {
        if l < 0 || r < 0 {
            return;
        }
        let (a, b) = (self.words[sid][l as usize], self.words[sid][r as usize]);
        if let Some(id) = self.get_pair_symbol(a, b) {
            let pos = encode_pos(sid, l as usize, r as usize);
            let s = &mut self.syms[id as usize];
            if !s.active {
                s.active = true;
                self.active_list.push(id);
            }
            match s.positions.last() {
                None => s.positions.push(pos),
                Some(&last) if pos > last => s.positions.push(pos),
                _ => {
                    if let Err(at) = s.positions.binary_search(&pos) {
                        s.positions.insert(at, pos);
                    }
                }
            }
            self.mark_dirty(id);
        }
    }

    #[inline(never)]
    fn reset_freq(&mut self, sid: usize, l: i64, r: i64, best: u32) {
        if l < 0 || r < 0 {
            return;
        }
        let (a, b) = (self.words[sid][l as usize], self.words[sid][r as usize]);
        if let Some(id) = self.get_pair_symbol(a, b) {
            if id != best {
                self.syms[id as usize].freq = 0;
                self.mark_dirty(id);
            }
        }
    }

    fn push_entry(&mut self, id: u32) {
        let syms = &self.syms;
        self.heap
            .push((syms[id as usize].freq, id), |a, b| better(syms, a, b));
    }

    /// Every 100 merges (window mode): recompute all pair frequencies and keep the top 5%.
    #[inline(never)]
    fn update_active(&mut self) {
        let mut order = std::mem::take(&mut self.order);
        self.cache.values_in_order(&mut order);
        let mut bigrams: Vec<u32> = Vec::with_capacity(order.len());
        for &id in &order {
            if self.syms[id as usize].left != NONE {
                self.compute_freq(id);
                bigrams.push(id);
            }
        }
        let want = std::cmp::max(1000i64, (self.cache.len() as f32 * 0.05f32) as i64) as usize;
        let size = std::cmp::min(want, bigrams.len());
        {
            let syms = &self.syms;
            heap_select(&mut bigrams, size, |a, b| {
                syms[a as usize].freq > syms[b as usize].freq
            });
        }
        for id in std::mem::take(&mut self.active_list) {
            self.syms[id as usize].active = false;
        }
        self.heap.clear();
        for &id in &bigrams[..size] {
            self.syms[id as usize].active = true;
            self.active_list.push(id);
            self.push_entry(id);
        }
        self.order = order;
    }

    #[inline(never)]
    fn select_best(&mut self) -> Option<u32> {
        let dirty = std::mem::take(&mut self.dirty);
        for id in dirty {
            self.syms[id as usize].dirty = false;
            let s = &self.syms[id as usize];
            if s.active && s.in_cache {
                self.compute_freq(id);
                self.push_entry(id);
            }
        }
        loop {
            let syms = &self.syms;
            let (freq, id) = self.heap.pop(|a, b| better(syms, a, b))?;
            let s = &syms[id as usize];
            if s.active && s.in_cache && s.freq == freq {
                return Some(id);
            }
        }
    }

    fn next_index(&self, sid: usize, i: usize) -> i64 {
        let w = &self.words[sid];
        for j in i + 1..w.len() {
            if w[j] != NONE {
                return j as i64;
            }
        }
        -1
    }

    fn prev_index(&self, sid: usize, i: usize) -> i64 {
        let w = &self.words[sid];
        let mut j = i as i64 - 1;
        while j >= 0 {
            if w[j as usize] != NONE {
                return j;
            }
            j -= 1;
        }
        -1
    }

    #[inline(never)]
    fn accept(&mut self, best: u32) {
        let positions = std::mem::take(&mut self.syms[best as usize].positions);
        for &p in &positions {
            let (sid, l, r) = decode_pos(p);
            if self.words[sid][l] == NONE || self.words[sid][r] == NONE {
                continue;
            }
            let next = self.next_index(sid, r);
            let prev = self.prev_index(sid, l);
            self.reset_freq(sid, prev, l as i64, best);
            self.reset_freq(sid, r as i64, next, best);
            self.words[sid][l] = best;
            self.words[sid][r] = NONE;
            self.add_new_pair(sid, prev, l as i64);
            self.add_new_pair(sid, l as i64, next);
        }
        self.syms[best as usize].positions = positions;
        self.erase(best);
    }

    fn erase(&mut self, id: u32) {
        let fp = self.syms[id as usize].fp;
        self.cache.erase(fp);
        let s = &mut self.syms[id as usize];
        s.in_cache = false;
        s.active = false;
    }
}

#[inline(never)]
fn count_line<'a>(line: &'a [u8], counts: &mut FxHashMap<&'a [u8], u64>) {
    for w in line.split(|&b| b == b' ' || b == b'\r' || b == b'\t') {
        if !w.is_empty() {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
}

/// Splits normalized text (lines of space-separated words) into `▁word` counts.
fn count_words(text: &[u8]) -> Vec<(Vec<u8>, u64)> {
    let mut counts: FxHashMap<&[u8], u64> = FxHashMap::default();
    // One call per line: WASM engines optimize a function between calls, not inside one.
    for line in text.split(|&b| b == b'\n') {
        count_line(line, &mut counts);
    }
    counts
        .into_iter()
        .map(|(w, n)| {
            let mut key = Vec::with_capacity(w.len() + 3);
            key.extend_from_slice("\u{2581}".as_bytes());
            key.extend_from_slice(w);
            (key, n)
        })
        .collect()
}

/// Trains a BPE vocabulary. Returns the pieces after the meta pieces, in id order: merged
/// pieces first (best first), then the required characters (most frequent first).
pub fn train(text: &[u8], cfg: Config) -> Result<Vec<Piece>, String> {
    // Words in SentencePiece's order: frequency descending, then bytes ascending.
    let mut wl = count_words(text);
    wl.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let wchars: Vec<Vec<u32>> = wl
        .iter()
        .map(|(w, _)| String::from_utf8_lossy(w).chars().map(|c| c as u32).collect())
        .collect();

    // Required characters by coverage.
    let mut cc: FxHashMap<u32, u64> = FxHashMap::default();
    let mut all = 0u64;
    for (i, w) in wchars.iter().enumerate() {
        for &c in w {
            *cc.entry(c).or_insert(0) += wl[i].1;
            all += wl[i].1;
        }
    }
    let mut chars: Vec<(u32, u64)> = cc.into_iter().collect();
    chars.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut required: Vec<(u32, u64)> = Vec::new();
    let mut acc = 0u64;
    for &(c, n) in &chars {
        let coverage = acc as f64 / all.max(1) as f64;
        if coverage >= cfg.coverage {
            break;
        }
        acc += n;
        if c == UNK_CHAR {
            continue;
        }
        required.push((c, n));
    }
    let req_set: FxHashSet<u32> = required.iter().map(|&(c, _)| c).collect();
    if cfg.vocab_size < cfg.n_meta + required.len() {
        return Err(format!(
            "vocabulary size {} is smaller than the {} special pieces plus {} required characters",
            cfg.vocab_size,
            cfg.n_meta,
            required.len()
        ));
    }
    let n_merges = cfg.vocab_size - cfg.n_meta - required.len();

    let mut t = Trainer {
        cfg,
        syms: Vec::new(),
        cache: StdOrderMap::new(),
        char_sym: FxHashMap::default(),
        words: Vec::with_capacity(wl.len()),
        wfreq: wl.iter().map(|w| w.1).collect(),
        heap: CandHeap::new(),
        order: Vec::new(),
        dirty: Vec::new(),
        active_list: Vec::new(),
    };
    for w in &wchars {
        let mut syms = Vec::with_capacity(w.len());
        for &c in w.iter().take(0xffff) {
            let c = if req_set.contains(&c) { c } else { UNK_CHAR };
            syms.push(t.get_char_symbol(c));
        }
        t.words.push(syms);
    }
    for sid in 0..t.words.len() {
        for i in 1..t.words[sid].len() {
            t.add_new_pair(sid, i as i64 - 1, i as i64);
        }
    }

    let mut dup: FxHashSet<Vec<u8>> = FxHashSet::default();
    let mut out: Vec<Piece> = Vec::with_capacity(t.cfg.vocab_size);
    while out.len() < n_merges {
        if t.cfg.spm_active_set && out.len() % 100 == 0 {
            // Like SentencePiece, also re-entered after a skipped duplicate at a multiple of 100.
            t.update_active();
        }
        let best = match t.select_best() {
            Some(b) => b,
            None => break,
        };
        if !dup.insert(t.syms[best as usize].bytes.clone()) {
            t.erase(best);
            continue;
        }
        out.push(Piece {
            bytes: t.syms[best as usize].bytes.clone(),
            freq: t.syms[best as usize].freq,
        });
        t.accept(best);
    }
    for &(c, n) in &required {
        let mut bytes = Vec::new();
        utf8_push(&mut bytes, c);
        out.push(Piece { bytes, freq: n });
    }
    Ok(out)
}
