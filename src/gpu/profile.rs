//! Per-kernel timing by isolated submissions: while a profile is recording, every
//! dispatch and copy is submitted on its own and waited for, so its wall time is the
//! kernel's (plus one submission's overhead). This works on every adapter, lavapipe
//! included; it serialises the work, so a profiled step is slower than a real one and
//! its total is reported beside the real step time, never instead of it.

use std::collections::BTreeMap;
use std::time::Duration;

/// Calls and time of one kernel (shader:entry) or of buffer copies.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelTime {
    pub calls: u64,
    pub time: Duration,
}

/// What a recording collected, by kernel name.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub kernels: BTreeMap<String, KernelTime>,
}

impl Profile {
    pub(super) fn add(&mut self, name: &str, time: Duration) {
        let k = self.kernels.entry(name.to_string()).or_default();
        k.calls += 1;
        k.time += time;
    }

    /// Sum over all kernels.
    pub fn total(&self) -> Duration {
        self.kernels.values().map(|k| k.time).sum()
    }

    /// Kernels summed by shader file (the op family): `conv2d:forward` and
    /// `conv2d:bias_grad` both count to `conv2d`.
    pub fn families(&self) -> BTreeMap<String, KernelTime> {
        let mut out: BTreeMap<String, KernelTime> = BTreeMap::new();
        for (name, k) in &self.kernels {
            let family = name.split(':').next().unwrap_or(name);
            let f = out.entry(family.to_string()).or_default();
            f.calls += k.calls;
            f.time += k.time;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_sum_their_kernels() {
        let mut p = Profile::default();
        p.add("conv2d:forward", Duration::from_millis(3));
        p.add("conv2d:forward", Duration::from_millis(2));
        p.add("conv2d_backward:input_grad", Duration::from_millis(4));
        p.add("conv2d:bias", Duration::from_millis(1));
        let f = p.families();
        assert_eq!(f["conv2d"].calls, 3);
        assert_eq!(f["conv2d"].time, Duration::from_millis(6));
        assert_eq!(f["conv2d_backward"].calls, 1);
        assert_eq!(p.total(), Duration::from_millis(10));
    }
}
