//! A counting global allocator: how many bytes one input made live at its
//! peak, above what was live before it ran.
//!
//! The decoders under test take their bounds from their callers (a frame
//! limit, `Limits::message_bytes`, a package size); a decoder that allocates
//! by what the input *claims* rather than by what it holds shows up here as
//! a peak far beyond its bound, even when the allocation is freed at once.
//! Counts are per thread (a test binary runs targets on several threads);
//! they include the harness's own buffers, and bounds leave room for them.
//!
//! The only `unsafe` of the fuzzer: `GlobalAlloc` is an unsafe trait.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// [`System`], counting this thread's live bytes and their high-water mark.
pub struct Counting;

thread_local! {
    // Signed: memory allocated on one thread may be freed on another.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // `try_with`: a thread's last frees may come after its locals are gone.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed through to `System` unchanged; the counters
// beside it are thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Marks the start of one input: returns the bytes live now and restarts
/// the high-water mark from there.
pub fn start() -> i64 {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

/// Bytes above `base` (what [`start`] returned) at the high-water mark since.
/// Zero when [`Counting`] is not the global allocator.
pub fn peak_since(base: i64) -> usize {
    (PEAK.with(Cell::get) - base).max(0) as usize
}
