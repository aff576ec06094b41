//! A thread that ends the process when one call into the GPU driver (a submission, a
//! wait for results) takes longer than a limit: a kernel that never ends (an edited
//! shader's endless loop) must end the run with an error, not stall it forever. The
//! call cannot be interrupted, and drivers block in either place (lavapipe blocks in
//! the submission), so the error is printed and the process exits from this thread.
//! Checkpoints are written by rename, so none is left half-written.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Environment variable giving the limit in seconds (the experiment YAML's
/// `device.timeout_s` takes precedence).
pub const TIMEOUT_ENV: &str = "WGSEG_GPU_TIMEOUT_S";

/// Long enough for the largest submission the experiments make on a 2-core CPU
/// adapter (an evaluation's batch), short enough that a hang is noticed.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// The limit of `seconds`, named `what` in the error when it is not a positive
/// finite number.
pub fn timeout(seconds: f64, what: &str) -> Result<Duration> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(Error::Usage(format!(
            "{what}: {seconds} must be a finite number > 0"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The limit from the environment, or the default.
pub fn timeout_from_env() -> Result<Duration> {
    let Some(v) = std::env::var_os(TIMEOUT_ENV).filter(|v| !v.is_empty()) else {
        return timeout(DEFAULT_TIMEOUT_S, TIMEOUT_ENV);
    };
    let text = v.to_string_lossy();
    let seconds = text.trim().parse::<f64>().map_err(|_| {
        Error::Usage(format!(
            "{TIMEOUT_ENV}: {text:?} is not a number of seconds"
        ))
    })?;
    timeout(seconds, TIMEOUT_ENV)
}

struct State {
    limit: Duration,
    /// The call in progress and when it began.
    busy: Option<(&'static str, Instant)>,
    stop: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.0.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Watchdog(Shared);

impl Watchdog {
    pub fn new(limit: Duration) -> Result<Watchdog> {
        let shared: Shared = Arc::new((
            Mutex::new(State {
                limit,
                busy: None,
                stop: false,
            }),
            Condvar::new(),
        ));
        let watched = shared.clone();
        std::thread::Builder::new()
            .name("wgseg-watchdog".into())
            .spawn(move || watch(&watched))
            .map_err(|e| Error::Gpu(format!("watchdog thread: {e}")))?;
        Ok(Watchdog(shared))
    }

    pub fn set_limit(&self, limit: Duration) {
        lock(&self.0).limit = limit;
        self.0 .1.notify_all();
    }

    /// Watches the call `what` until the returned guard is dropped.
    pub fn watch(&self, what: &'static str) -> Busy<'_> {
        lock(&self.0).busy = Some((what, Instant::now()));
        self.0 .1.notify_all();
        Busy(self)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        lock(&self.0).stop = true;
        self.0 .1.notify_all();
    }
}

/// A call being watched; dropping it ends the watch.
pub struct Busy<'a>(&'a Watchdog);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.0 .0).busy = None;
    }
}

fn watch(shared: &Shared) {
    let mut state = lock(shared);
    while !state.stop {
        state = match state.busy {
            None => shared.1.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some((what, since)) => {
                let limit = state.limit;
                let elapsed = since.elapsed();
                if elapsed < limit {
                    let (s, _) = shared
                        .1
                        .wait_timeout(state, limit - elapsed)
                        .unwrap_or_else(|p| p.into_inner());
                    s
                } else {
                    eprintln!(
                        "wgseg: gpu: {what} did not finish within {} s ({TIMEOUT_ENV} or device.timeout_s): a kernel that never ends?",
                        limit.as_secs_f64()
                    );
                    std::process::exit(2);
                }
            }
        };
    }
}
