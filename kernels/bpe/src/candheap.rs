//! A binary max-heap of (frequency, symbol) candidates ordered by a caller-supplied "better"
//! relation, so ties can look at symbol data without copying it into every entry.

pub struct CandHeap {
    v: Vec<(u64, u32)>,
}

impl CandHeap {
    pub fn new() -> Self {
        CandHeap { v: Vec::new() }
    }

    pub fn clear(&mut self) {
        self.v.clear();
    }

    pub fn push<F: Fn(&(u64, u32), &(u64, u32)) -> bool>(&mut self, item: (u64, u32), better: F) {
        self.v.push(item);
        let mut i = self.v.len() - 1;
        while i > 0 {
            let p = (i - 1) / 2;
            if !better(&self.v[i], &self.v[p]) {
                break;
            }
            self.v.swap(i, p);
            i = p;
        }
    }

    pub fn pop<F: Fn(&(u64, u32), &(u64, u32)) -> bool>(&mut self, better: F) -> Option<(u64, u32)> {
        let n = self.v.len();
        if n == 0 {
            return None;
        }
        self.v.swap(0, n - 1);
        let top = self.v.pop();
        let n = n - 1;
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && better(&self.v[r], &self.v[l]) {
                r
            } else {
                l
            };
            if !better(&self.v[c], &self.v[i]) {
                break;
            }
            self.v.swap(c, i);
            i = c;
        }
        top
    }
}
