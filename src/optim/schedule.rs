//! Learning-rate schedules (the `schedule` section): a base rate times a factor of
//! the iteration.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// The `schedule` section: steps and the default learning-rate policy.
pub struct ScheduleCfg {
    /// Optimisation steps.
    pub iters: usize,
    #[serde(default = "default_policy")]
    pub policy: Schedule,
    pub warmup: Option<Warmup>,
}

fn default_policy() -> Schedule {
    Schedule::Poly { power: 0.9 }
}

/// How the learning rate evolves over `total` iterations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// Constant rate.
    Constant,
    /// (1 - it/total)^power, as DeepLab and MaskContrast use (power 0.9).
    Poly {
        #[serde(default = "default_power")]
        power: f64,
    },
    /// Half-cosine from 1 down to `min_factor`.
    Cosine {
        #[serde(default)]
        min_factor: f64,
    },
    /// Multiplied by `gamma` at each milestone iteration.
    Step { milestones: Vec<usize>, gamma: f64 },
}

fn default_power() -> f64 {
    0.9
}

/// Linear warm-up from `start_factor` to 1 over `iters` iterations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    pub iters: usize,
    #[serde(default = "default_start")]
    pub start_factor: f64,
}

fn default_start() -> f64 {
    0.1
}

impl Schedule {
    /// The factor at iteration `it` of `total` (0-based), before warm-up.
    pub fn factor(&self, it: usize, total: usize) -> f64 {
        let progress = (it as f64 / total.max(1) as f64).min(1.0);
        match self {
            Schedule::Constant => 1.0,
            Schedule::Poly { power } => (1.0 - progress).powf(*power),
            Schedule::Cosine { min_factor } => {
                min_factor
                    + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Step { milestones, gamma } => {
                gamma.powi(milestones.iter().filter(|&&m| it >= m).count() as i32)
            }
        }
    }
}

/// The learning rate at iteration `it`: base * schedule factor * warm-up factor.
pub fn learning_rate(
    base: f64,
    schedule: &Schedule,
    warmup: Option<&Warmup>,
    it: usize,
    total: usize,
) -> f64 {
    let warm = match warmup {
        Some(w) if it < w.iters => {
            w.start_factor + (1.0 - w.start_factor) * it as f64 / w.iters as f64
        }
        _ => 1.0,
    };
    base * schedule.factor(it, total) * warm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(Schedule::Poly { power: 0.9 }.factor(0, 100), 1.0);
        assert!((Schedule::Poly { power: 1.0 }.factor(50, 100) - 0.5).abs() < 1e-12);
        assert!((Schedule::Cosine { min_factor: 0.0 }.factor(50, 100) - 0.5).abs() < 1e-12);
        assert_eq!(
            Schedule::Step {
                milestones: vec![25, 50],
                gamma: 0.1
            }
            .factor(30, 60),
            0.1
        );
        let w = Warmup {
            iters: 10,
            start_factor: 0.1,
        };
        assert!((learning_rate(1.0, &Schedule::Constant, Some(&w), 0, 100) - 0.1).abs() < 1e-12);
        assert!((learning_rate(1.0, &Schedule::Constant, Some(&w), 10, 100) - 1.0).abs() < 1e-12);
    }
}
