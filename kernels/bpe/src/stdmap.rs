//! Iteration order of a GNU libstdc++ `std::unordered_map<uint64_t, T>` (identity hash,
//! prime bucket counts, max load factor 1, new nodes at the front of their bucket).
//! SentencePiece's BPE trainer picks its "active" candidate pairs by scanning such a map, so
//! when several pairs tie at the cut-off its choice depends on this order; replaying it lets
//! our trainer break those ties the same way. Lookups go through an ordinary hash map; this
//! structure only keeps the singly linked node list and bucket heads that define the order.

use crate::fxhash::FxHashMap;

const NIL: u32 = u32::MAX;
const BEFORE_BEGIN: u32 = u32::MAX - 1;

/// Bucket counts libstdc++ grows through when a map fills one element at a time (measured
/// with g++ 12: start at 13, then the first listed prime >= twice the previous count).
const GROWTH: [u64; 20] = [
    13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061, 712697, 1447153,
    2938679, 5967347, 12099053,
];

struct Node {
    key: u64,
    val: u32,
    next: u32,
}

pub struct StdOrderMap {
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: FxHashMap<u64, u32>, // key -> node
    buckets: Vec<u32>,          // node before the bucket's first node, NIL when empty
    head: u32,                  // _M_before_begin._M_nxt
    next_resize: u64,
    len: usize,
}

impl StdOrderMap {
    pub fn new() -> Self {
        StdOrderMap {
            nodes: Vec::new(),
            free: Vec::new(),
            index: FxHashMap::default(),
            buckets: vec![NIL; 1],
            head: NIL,
            next_resize: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, key: u64) -> Option<u32> {
        self.index.get(&key).map(|&n| self.nodes[n as usize].val)
    }

    #[inline]
    fn bkt(&self, key: u64) -> usize {
        (key % self.buckets.len() as u64) as usize
    }

    #[inline]
    fn next_of(&self, before: u32) -> u32 {
        if before == BEFORE_BEGIN {
            self.head
        } else {
            self.nodes[before as usize].next
        }
    }

    #[inline]
    fn set_next(&mut self, before: u32, to: u32) {
        if before == BEFORE_BEGIN {
            self.head = to;
        } else {
            self.nodes[before as usize].next = to;
        }
    }

    fn next_bucket_count(n: u64) -> u64 {
        for &g in GROWTH.iter() {
            if g >= n {
                return g;
            }
        }
        // Beyond the measured path: keep doubling to an odd number (order no longer exact).
        n | 1
    }

    fn rehash(&mut self, count: u64) {
        let mut nb = vec![NIL; count as usize];
        let mut p = self.head;
        self.head = NIL;
        let mut bbegin = 0usize;
        while p != NIL {
            let next = self.nodes[p as usize].next;
            let b = (self.nodes[p as usize].key % count) as usize;
            if nb[b] == NIL {
                self.nodes[p as usize].next = self.head;
                self.head = p;
                nb[b] = BEFORE_BEGIN;
                if self.nodes[p as usize].next != NIL {
                    nb[bbegin] = p;
                }
                bbegin = b;
            } else {
                let before = nb[b];
                let after = self.next_of(before);
                self.nodes[p as usize].next = after;
                self.set_next(before, p);
            }
            p = next;
        }
        self.buckets = nb;
    }

    /// Inserts a key that is not present (as `emplace` on a miss).
    pub fn insert(&mut self, key: u64, val: u32) {
        debug_assert!(!self.index.contains_key(&key));
        let n_elt = self.len as u64;
        if n_elt + 1 > self.next_resize {
            let min_bkts = std::cmp::max(n_elt + 1, if self.next_resize == 0 { 11 } else { 0 });
            let nbk = self.buckets.len() as u64;
            if min_bkts >= nbk {
                let want = std::cmp::max(min_bkts + 1, nbk * 2);
                let count = Self::next_bucket_count(want);
                self.next_resize = count;
                self.rehash(count);
            } else {
                self.next_resize = nbk;
            }
        }
        let node = Node { key, val, next: NIL };
        let id = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.index.insert(key, id);
        let b = self.bkt(key);
        if self.buckets[b] != NIL {
            let before = self.buckets[b];
            let after = self.next_of(before);
            self.nodes[id as usize].next = after;
            self.set_next(before, id);
        } else {
            self.nodes[id as usize].next = self.head;
            self.head = id;
            let nx = self.nodes[id as usize].next;
            if nx != NIL {
                let nb = self.bkt(self.nodes[nx as usize].key);
                self.buckets[nb] = id;
            }
            self.buckets[b] = BEFORE_BEGIN;
        }
        self.len += 1;
    }

    /// Erases a key if present.
    pub fn erase(&mut self, key: u64) {
        let n = match self.index.remove(&key) {
            Some(n) => n,
            None => return,
        };
        let b = self.bkt(key);
        // Find the node before n within its bucket.
        let mut prev = self.buckets[b];
        while self.next_of(prev) != n {
            prev = self.next_of(prev);
        }
        let nxt = self.nodes[n as usize].next;
        if prev == self.buckets[b] {
            let next_b = if nxt != NIL {
                self.bkt(self.nodes[nxt as usize].key)
            } else {
                0
            };
            if nxt == NIL || next_b != b {
                if nxt != NIL {
                    self.buckets[next_b] = self.buckets[b];
                }
                if self.buckets[b] == BEFORE_BEGIN {
                    self.head = nxt;
                }
                self.buckets[b] = NIL;
            }
        } else if nxt != NIL {
            let next_b = self.bkt(self.nodes[nxt as usize].key);
            if next_b != b {
                self.buckets[next_b] = prev;
            }
        }
        self.set_next(prev, nxt);
        self.free.push(n);
        self.len -= 1;
    }

    /// Values in the map's iteration order.
    pub fn values_in_order(&self, out: &mut Vec<u32>) {
        out.clear();
        let mut p = self.head;
        while p != NIL {
            out.push(self.nodes[p as usize].val);
            p = self.nodes[p as usize].next;
        }
    }
}
