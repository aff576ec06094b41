//! Progress bars for training, evaluation and data generation; hidden when stdout is
//! not a terminal (logs and CI stay clean).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if !std::io::stdout().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(what.to_string());
    pb
}

/// Runs `f` with a tick that advances a bar of `len` steps labelled `what`, then
/// clears the bar.
pub fn with_bar<T>(len: u64, what: &str, f: impl FnOnce(&mut dyn FnMut()) -> T) -> T {
    let pb = bar(len, what);
    let out = f(&mut || pb.inc(1));
    pb.finish_and_clear();
    out
}
