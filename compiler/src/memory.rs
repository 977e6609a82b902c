//! How much memory a tensor may take: sizes computed from data (a Tile's repeats, an Expand's
//! shape, a Range's limit) are checked here before anything is allocated, so a hostile size
//! is an error naming the tensor instead of a wrapped count, a crash or the OOM killer.
//!
//! The limit is `SMELT_MEMORY_LIMIT` (bytes, with an optional `K`, `M`, `G` or `T` suffix)
//! where set, else the memory the OS says is available (`MemAvailable` in `/proc/meminfo`),
//! else 16 GiB; never more than the process's address-space limit (`ulimit -v`). Large buffers are allocated
//! with [`try_filled`], so an allocator that still refuses is an error too.

use std::sync::OnceLock;

/// The most bytes one allocation may take.
pub fn limit_bytes() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let wanted = std::env::var("SMELT_MEMORY_LIMIT")
            .ok()
            .and_then(|text| parse_size(&text))
            .or_else(available_bytes)
            .unwrap_or(16 << 30);
        wanted.min(address_space_bytes().unwrap_or(u64::MAX))
    })
}

/// `12G`, `512M`, `1048576`: bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft address-space limit (`ulimit -v`), where one is set.
fn address_space_bytes() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The element count of `shape`, if it fits in 64 bits.
pub fn elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
}

/// Checks that a tensor of `shape` with `element_bytes`-byte elements fits under
/// [`limit_bytes`]; the error names `what` and the size.
pub fn check(what: &str, shape: &[u64], element_bytes: u64) -> Result<(), String> {
    match elements(shape).and_then(|n| n.checked_mul(element_bytes)) {
        Some(bytes) => check_bytes(&format!("{what} of shape {shape:?}"), bytes),
        None => Err(format!("{what} of shape {shape:?} has more elements than 64 bits can count")),
    }
}

/// `len` copies of `value`, or an error naming `what` and the size where the allocator
/// refuses (an address-space limit, a failed `mmap`) instead of aborting the process.
pub fn try_filled<T: Clone>(what: &str, len: usize, value: T) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    let bytes = (len as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    v.try_reserve_exact(len).map_err(|_| format!("{what} needs {}, which could not be allocated", human(bytes)))?;
    v.resize(len, value);
    Ok(v)
}

/// Zeroed memory for large buffers that live as long as a compiled model (the arena of live
/// values, packed weights). From 2 MiB up it is aligned to 2 MiB and, on Linux, offered to
/// transparent huge pages before it is first touched: a buffer on 4 KiB pages lands on
/// whatever physical pages the kernel hands out, and two compilations of one model then run
/// a percent or more apart from cache-set and TLB luck alone.
pub struct Pages {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

// SAFETY: `Pages` owns its allocation exclusively, like a `Box<[u8]>`.
unsafe impl Send for Pages {}
// SAFETY: shared references only read the pointer and length.
unsafe impl Sync for Pages {}

const HUGE_PAGE: usize = 2 << 20;

impl Pages {
    /// `bytes` zeroed bytes (at least one), or an error naming `what` and the size.
    pub fn zeroed(what: &str, bytes: usize) -> Result<Pages, String> {
        let refused = || format!("{what} needs {}, which could not be allocated", human(bytes as u64));
        // Whole 4 KiB pages past the last huge one: the tail is not worth rounding up to 2 MiB.
        let (align, unit) = if bytes >= HUGE_PAGE { (HUGE_PAGE, 4096) } else { (64, 64) };
        let size = bytes.max(1).checked_next_multiple_of(unit).ok_or_else(refused)?;
        let layout = std::alloc::Layout::from_size_align(size, align).map_err(|_| refused())?;
        // SAFETY: the layout's size is non-zero.
        let ptr = std::ptr::NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or_else(refused)?;
        // The advice must come before the first touch (`alloc_zeroed` would write the zeros
        // through 4 KiB pages first).
        #[cfg(all(target_os = "linux", not(miri)))]
        if align == HUGE_PAGE {
            // SAFETY: the range is this allocation; MADV_HUGEPAGE is only advice, and where the
            // kernel declines it the pages stay ordinary.
            unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: the allocation holds `size` bytes.
        unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, size) };
        Ok(Pages { ptr, layout })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.layout.size()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the allocation holds `len` initialized (zeroed) bytes, borrowed mutably here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Checks that `bytes` fit under [`limit_bytes`]; the error names `what`.
pub fn check_bytes(what: &str, bytes: u64) -> Result<(), String> {
    if bytes <= limit_bytes() {
        return Ok(());
    }
    Err(format!(
        "{what} needs {}, over the memory limit of {} (SMELT_MEMORY_LIMIT, else available memory; at most ulimit -v)",
        human(bytes),
        human(limit_bytes())
    ))
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..0x10_0000 => format!("{:.1} KiB", b / 1024.0),
        0x10_0000..0x4000_0000 => format!("{:.1} MiB", b / 1048576.0),
        _ => format!("{:.1} GiB", b / 1073741824.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_the_allocator_refuses_is_an_error() {
        let error = try_filled("the arena", usize::MAX / 4, 0u64).unwrap_err();
        assert!(error.starts_with("the arena needs") && error.contains("could not be allocated"), "{error}");
        assert_eq!(try_filled("x", 3, 7u8).unwrap(), vec![7, 7, 7]);
    }

    #[test]
    fn sizes_parse_and_overflow_is_an_error() {
        assert_eq!(parse_size("12G"), Some(12 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("x"), None);
        assert_eq!(elements(&[1 << 32, 1 << 32]), None);
        assert!(check("tile result", &[1 << 32, 1 << 32], 4).unwrap_err().contains("64 bits"));
        assert!(check("x", &[1 << 60], 4).unwrap_err().contains("memory limit"));
        assert!(check("x", &[2, 3], 4).is_ok());
    }
}
