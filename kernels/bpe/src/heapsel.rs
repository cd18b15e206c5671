//! The membership of `std::partial_sort(first, first + k, last, comp)` in GNU libstdc++:
//! heap-select (make_heap over the first k, then every later element that beats the heap top
//! replaces it). Which of several tied elements survive depends on this exact heap, so it is
//! replayed step by step. `less(a, b)` is the comparator (here: freq(a) > freq(b)).

fn adjust_heap<F: Fn(u32, u32) -> bool>(v: &mut [u32], mut hole: usize, len: usize, value: u32, less: &F) {
    let top = hole;
    let mut second = hole;
    while len >= 2 && second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(v[second], v[second - 1]) {
            second -= 1;
        }
        v[hole] = v[second];
        hole = second;
    }
    if len >= 2 && (len & 1) == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v[hole] = v[second - 1];
        hole = second - 1;
    }
    // push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(v[parent], value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

fn make_heap<F: Fn(u32, u32) -> bool>(v: &mut [u32], less: &F) {
    let len = v.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[parent];
        adjust_heap(v, parent, len, value, less);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// Reorders `v` so that `v[..k]` holds exactly the elements libstdc++'s partial_sort keeps.
pub fn heap_select<F: Fn(u32, u32) -> bool>(v: &mut [u32], k: usize, less: F) {
    if k == 0 {
        return;
    }
    make_heap(&mut v[..k], &less);
    for i in k..v.len() {
        if less(v[i], v[0]) {
            // pop_heap(first, middle, i)
            let value = v[i];
            v[i] = v[0];
            adjust_heap(&mut v[..k], 0, k, value, &less);
        }
    }
}
