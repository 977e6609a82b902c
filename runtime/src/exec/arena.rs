//! The memory plan's allocator: first-fit placement of live ranges in one arena.

use super::align;

/// First-fit placement of live ranges in the arena.
#[derive(Default)]
pub(super) struct Arena {
    live: Vec<(usize, usize)>,
    pub(super) peak: usize,
}

impl Arena {
    pub(super) fn alloc(&mut self, size: usize) -> usize {
        let size = align(size.max(1));
        self.live.sort();
        let mut at = 0;
        for &(o, s) in &self.live {
            if o >= at + size {
                break;
            }
            at = at.max(o + s);
        }
        self.live.push((at, size));
        self.peak = self.peak.max(at + size);
        at
    }

    pub(super) fn free(&mut self, offset: usize) {
        self.live.retain(|&(o, _)| o != offset);
    }
}
