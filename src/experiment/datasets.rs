//! The datasets a run opens: the source's splits and the target's, kept open across
//! the arms of a run while their `data` sections agree.

use super::progress::bar;
use crate::data::config::DataCfg;
use crate::data::dataset::{self, Dataset};
use crate::error::{Error, Result};
use crate::method::TrainSets;

/// The open splits of a `data` section: the source's, and the target's when it has one.
pub struct Sets {
    pub train: Dataset,
    pub val: Dataset,
    pub target: Option<(Dataset, Dataset)>,
}

impl Sets {
    /// What training draws from.
    pub fn train_sets(&self) -> TrainSets<'_> {
        TrainSets {
            source: &self.train,
            target: self.target.as_ref().map(|t| &t.0),
        }
    }

    /// What evaluation scores: the target's validation split when there is a target.
    pub fn eval(&self) -> &Dataset {
        self.target.as_ref().map_or(&self.val, |t| &t.1)
    }
}

/// The open datasets, reopened only when an arm's `data` section differs.
#[derive(Default)]
pub struct Data(Option<(String, Sets)>);

impl Data {
    pub fn open(&mut self, cfg: &DataCfg) -> Result<&Sets> {
        let key = serde_json::to_string(cfg).map_err(|e| Error::Usage(format!("data: {e}")))?;
        let entry = match self.0.take() {
            Some(entry) if entry.0 == key => entry,
            _ => {
                let gen = bar(0, "data");
                let mut tick = || gen.inc(1);
                let (train, val) = dataset::open(cfg, &mut tick)?;
                let target = dataset::open_target(cfg, &mut tick)?;
                gen.finish_and_clear();
                (key, Sets { train, val, target })
            }
        };
        Ok(&self.0.insert(entry).1)
    }
}
