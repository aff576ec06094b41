//! The experiment schema: the top level of a YAML file, composed of the sections its
//! consumers own (data, augment: src/data; model: src/nn; method: src/method; optim,
//! schedule: src/optim; eval: src/eval) and the run's own (device, stages, output,
//! baselines). Unknown keys are refused everywhere (`deny_unknown_fields`), so a typo
//! cannot silently fall back to a default.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::optim::finite::OnNonfinite;
use serde::{Deserialize, Serialize};

use crate::data::config::{AugmentCfg, DataCfg};
use crate::eval::config::EvalCfg;
use crate::method::MethodCfg;
use crate::nn::seg_model::ModelCfg;
use crate::optim::config::OptimCfg;
use crate::optim::schedule::{Schedule, ScheduleCfg, Warmup};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names the run folder runs/<name>/<time>.
    pub name: String,
    /// Seeds weights, data order, augmentation and evaluation.
    #[serde(default)]
    pub seed: u64,
    /// Training seeds: when given, every arm (the experiment and each baseline) is
    /// trained once per seed, in <run>/seeds/<seed>/ (`seed` is then unused), and the
    /// run's report gives mean +- std across them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub device: DeviceCfg,
    pub data: DataCfg,
    #[serde(default)]
    pub augment: AugmentCfg,
    pub model: ModelCfg,
    pub method: MethodCfg,
    /// The network's optimiser (parameter set `network`).
    pub optim: OptimCfg,
    /// Further optimisers, keyed by the parameter set they train besides the network
    /// (e.g. `discriminator`); which sets there are is the method's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub optimizers: BTreeMap<String, OptimCfg>,
    /// Total optimisation steps (with `stages`: their sum) and the default
    /// learning-rate policy.
    pub schedule: ScheduleCfg,
    /// Training stages run one after another in one run, each with its own steps,
    /// schedule and overrides of the method and optimisers; the networks and the
    /// optimisers' state carry over. Empty: one stage, `schedule`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageCfg>,
    #[serde(default)]
    pub eval: EvalCfg,
    #[serde(default)]
    pub output: OutputCfg,
    /// Comparison runs trained in the same run, each into its own sub-folder: a name
    /// and the `key.path=value` overrides (as `--set`) that turn this experiment into
    /// it. Seed and schedule stay those of the experiment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCfg {
    /// vulkan, metal, dx12 or gl (as WGPU_BACKEND).
    pub backend: Option<String>,
    /// Substring of the adapter name (as WGPU_ADAPTER_NAME).
    pub adapter: Option<String>,
    /// Directory of NAME.wgsl files overriding the built-in kernels.
    pub shader_dir: Option<PathBuf>,
    /// Seconds a wait for the GPU may take before the run stops with an error (as
    /// WGSEG_GPU_TIMEOUT_S; default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// One training stage: its steps, schedule and overrides.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCfg {
    /// Names the stage in metrics, checkpoints and the report.
    pub name: String,
    /// Optimisation steps of the stage.
    pub iters: usize,
    /// Learning-rate policy over the stage's steps, restarting at its first;
    /// omitted: `schedule.policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Schedule>,
    /// Warm-up at the stage's start; omitted: `schedule.warmup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    /// Keys of the `method` section set for this stage (loss weights, ...).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub method: serde_yaml::Mapping,
    /// Keys of the `optim` section set for this stage (lr, momentum, ...; not kind
    /// or frozen: the optimiser's state carries over).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    pub optim: serde_yaml::Mapping,
    /// The same for the sections of `optimizers`, by parameter set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub optimizers: BTreeMap<String, serde_yaml::Mapping>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputCfg {
    pub dir: PathBuf,
    /// Log training scalars every this many steps.
    pub log_every: usize,
    /// Write a checkpoint every this many steps (and always at the end).
    pub checkpoint_every: usize,
    /// Validation images drawn as prediction PNGs at the end.
    pub pictures: usize,
    /// What a step whose loss or gradient is NaN or infinite does.
    pub on_nonfinite: OnNonfinite,
}

impl Default for OutputCfg {
    fn default() -> Self {
        OutputCfg {
            dir: PathBuf::from("runs"),
            log_every: 10,
            checkpoint_every: 100,
            pictures: 4,
            on_nonfinite: OnNonfinite::Stop,
        }
    }
}
