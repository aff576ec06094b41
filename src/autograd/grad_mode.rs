//! Thread-local grad mode: inside `no_grad` ops record nothing on the tape.

use std::cell::Cell;

thread_local! {
    static DISABLED: Cell<u32> = const { Cell::new(0) };
}

pub fn is_grad_enabled() -> bool {
    DISABLED.with(|d| d.get() == 0)
}

/// Disables recording until dropped (nests).
pub struct NoGradGuard(());

impl NoGradGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        DISABLED.with(|d| d.set(d.get() + 1));
        NoGradGuard(())
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        DISABLED.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` without recording on the tape.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _g = NoGradGuard::new();
    f()
}
