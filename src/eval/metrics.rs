//! Segmentation metrics: confusion matrix, mIoU, pixel accuracy, per-class IoU, and
//! the matching of unsupervised clusters to classes (Hungarian when the counts agree,
//! majority vote otherwise).

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde::{Deserialize, Serialize};

/// counts[gt * cols + pred]: rows are ground-truth classes, columns predictions.
#[derive(Clone, Debug)]
pub struct Confusion {
    pub rows: usize,
    pub cols: usize,
    pub counts: Vec<u64>,
}

impl Confusion {
    pub fn new(rows: usize, cols: usize) -> Self {
        Confusion {
            rows,
            cols,
            counts: vec![0; rows * cols],
        }
    }

    /// Adds one image; ground truth equal to `ignore` or outside the classes is skipped.
    pub fn add(&mut self, gt: &[u8], pred: &[u32], ignore: u8) {
        for (&g, &p) in gt.iter().zip(pred) {
            if g == ignore || g as usize >= self.rows || p as usize >= self.cols {
                continue;
            }
            self.counts[g as usize * self.cols + p as usize] += 1;
        }
    }

    fn at(&self, r: usize, c: usize) -> u64 {
        self.counts[r * self.cols + c]
    }

    /// Relabels the prediction columns through `mapping` (column -> class).
    pub fn remap(&self, mapping: &[usize], classes: usize) -> Confusion {
        let mut out = Confusion::new(self.rows, classes);
        for r in 0..self.rows {
            for (c, &m) in mapping.iter().enumerate() {
                out.counts[r * classes + m] += self.at(r, c);
            }
        }
        out
    }

    /// Scores of a square (class x class) confusion matrix.
    pub fn scores(&self) -> Scores {
        let n = self.rows.min(self.cols);
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..n).map(|i| self.at(i, i)).sum();
        let per_class: Vec<Option<f64>> = (0..self.rows)
            .map(|i| {
                let tp = if i < self.cols { self.at(i, i) } else { 0 };
                let gt: u64 = (0..self.cols).map(|c| self.at(i, c)).sum();
                let pred: u64 = if i < self.cols {
                    (0..self.rows).map(|r| self.at(r, i)).sum()
                } else {
                    0
                };
                let union = gt + pred - tp;
                (union > 0).then(|| tp as f64 / union as f64)
            })
            .collect();
        let present: Vec<f64> = per_class.iter().flatten().copied().collect();
        Scores {
            miou: present.iter().sum::<f64>() / present.len().max(1) as f64,
            pixel_accuracy: correct as f64 / total.max(1) as f64,
            per_class_iou: per_class,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scores {
    /// Mean IoU over classes present in the ground truth or the prediction.
    pub miou: f64,
    pub pixel_accuracy: f64,
    /// IoU per class; None where a class appears in neither.
    pub per_class_iou: Vec<Option<f64>>,
}

/// Maps each cluster (column) of a class x cluster confusion matrix to a class:
/// Hungarian matching maximising overlap when there are no more clusters than
/// classes, else each cluster takes its majority class.
pub fn match_clusters(conf: &Confusion) -> Vec<usize> {
    let (classes, clusters) = (conf.rows, conf.cols);
    if clusters > classes {
        return (0..clusters)
            .map(|c| {
                (0..classes)
                    .max_by_key(|&r| (conf.at(r, c), std::cmp::Reverse(r)))
                    .unwrap_or(0)
            })
            .collect();
    }
    // Rows must not outnumber columns: clusters are rows, classes columns.
    let weights = Matrix::from_fn(clusters, classes, |(c, r)| conf.at(r, c) as i64);
    let (_, assignment) = kuhn_munkres(&weights);
    assignment
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miou_and_accuracy_of_a_known_confusion() {
        let mut c = Confusion::new(3, 3);
        c.add(&[0, 0, 1, 1, 2, 2, 255], &[0, 1, 1, 1, 2, 0, 2], 255);
        let s = c.scores();
        // class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 2, gt 2, pred 3 -> 2/3; class 2: 1/2
        assert!((s.miou - (1.0 / 3.0 + 2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
        assert!((s.pixel_accuracy - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn clusters_are_matched_to_classes() {
        // Cluster 2 is class 0, cluster 0 is class 1, cluster 1 is class 2.
        let mut c = Confusion::new(3, 3);
        c.add(&[0, 0, 0, 1, 1, 2, 2, 2], &[2, 2, 1, 0, 0, 1, 1, 2], 255);
        assert_eq!(match_clusters(&c), vec![1, 2, 0]);
        let remapped = c.remap(&match_clusters(&c), 3);
        assert!((remapped.scores().pixel_accuracy - 6.0 / 8.0).abs() < 1e-12);
        // More clusters than classes: majority vote.
        let mut m = Confusion::new(2, 3);
        m.add(&[0, 0, 1, 1, 1], &[0, 1, 1, 2, 2], 255);
        assert_eq!(match_clusters(&m), vec![0, 0, 1]);
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
    }
}
