//! Pixel contrast's memory (docs/methods/pixel_contrast.md): per class, a queue of segment
//! embeddings (the L2-normalised mean embedding of the class's pixels in one image)
//! and a queue of pixel embeddings (up to `pixel_update_freq` random pixels of the
//! class per image). Fed every step from the detached embeddings and the labels at
//! feature resolution, as the authors' `_dequeue_and_enqueue`, except that every
//! class but the ignore label enters (the authors skip class 0) and the pixel queue's
//! pointer advances by the number of pixels written (theirs by one: their issues
//! #18/#55).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::index;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::memory::queue::ClassQueues;
use crate::ops::layout::concat;
use crate::state::StateVisitor;
use crate::tensor::Tensor;

const SEGMENTS: &str = "memory.segments";
const PIXELS: &str = "memory.pixels";

pub struct PixelMemory {
    segments: ClassQueues,
    pixels: ClassQueues,
    pixel_update_freq: usize,
    ignore: u32,
}

/// Every filled row of both queues with its class label.
pub struct MemoryRows {
    /// [M, D].
    pub features: Tensor,
    /// u32 [M].
    pub labels: Tensor,
    pub labels_host: Vec<u32>,
}

impl PixelMemory {
    /// Empty queues of `size` rows of `dim` values per class, for `classes` classes.
    pub fn new(
        gpu: &Gpu,
        classes: usize,
        size: usize,
        dim: usize,
        pixel_update_freq: usize,
        ignore: u32,
    ) -> Result<PixelMemory> {
        Ok(PixelMemory {
            segments: ClassQueues::new(gpu, classes, size, dim)?,
            pixels: ClassQueues::new(gpu, classes, size, dim)?,
            pixel_update_freq,
            ignore,
        })
    }

    /// The filled rows of every queue (segments first), or `None` while all are empty.
    pub fn rows(&self) -> Result<Option<MemoryRows>> {
        let (mut parts, mut labels_host) = (Vec::new(), Vec::new());
        for queues in [&self.segments, &self.pixels] {
            for class in 0..queues.classes() {
                if let Some(rows) = queues.view(class)? {
                    labels_host.extend(std::iter::repeat_n(class as u32, rows.shape()[0]));
                    parts.push(rows);
                }
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let features = concat(&parts, 0)?;
        let labels = Tensor::from_u32(features.gpu(), &labels_host, &[labels_host.len()])?;
        Ok(Some(MemoryRows {
            features,
            labels,
            labels_host,
        }))
    }

    /// Enqueues a batch: `embedding` is the host copy of unit embeddings [B, D, h, w],
    /// `labels` the classes [B, h, w] at that resolution. Per class, the rows of the
    /// images enter in image order, one write per queue.
    pub fn enqueue(
        &mut self,
        embedding: &[f32],
        labels: &[u32],
        batch: usize,
        rng: &mut StdRng,
    ) -> Result<()> {
        let (dim, classes) = (self.segments.dim(), self.segments.classes());
        let hw = labels.len() / batch;
        if hw * batch != labels.len() || embedding.len() != batch * dim * hw {
            return Err(Error::op(
                "pixel_memory",
                format!(
                    "{} labels and {} embedding values do not make {batch} images of {dim} dims",
                    labels.len(),
                    embedding.len()
                ),
            ));
        }
        let mut segment_rows = vec![Vec::new(); classes];
        let mut pixel_rows = vec![Vec::new(); classes];
        for (b, image) in labels.chunks(hw).enumerate() {
            let value = |d: usize, p: usize| embedding[(b * dim + d) * hw + p];
            let mut positions: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for (p, &l) in image.iter().enumerate() {
                if l != self.ignore {
                    positions.entry(l).or_default().push(p);
                }
            }
            for (class, pos) in positions {
                let mut mean: Vec<f32> = (0..dim)
                    .map(|d| pos.iter().map(|&p| value(d, p)).sum())
                    .collect();
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|v| *v /= norm);
                segment_rows[class as usize].extend(mean);
                let keep = pos.len().min(self.pixel_update_freq);
                for i in index::sample(rng, pos.len(), keep) {
                    pixel_rows[class as usize].extend((0..dim).map(|d| value(d, pos[i])));
                }
            }
        }
        for (queues, rows) in [
            (&mut self.segments, segment_rows),
            (&mut self.pixels, pixel_rows),
        ] {
            for (class, rows) in rows.into_iter().enumerate() {
                if !rows.is_empty() {
                    let t =
                        Tensor::from_slice(queues.data().gpu(), &rows, &[rows.len() / dim, dim])?;
                    queues.enqueue(class, &t)?;
                }
            }
        }
        Ok(())
    }

    /// Both queues' storage, write pointers and fill counts.
    pub fn visit_state(&mut self, v: &mut dyn StateVisitor) -> Result<()> {
        self.segments.visit_state(SEGMENTS, v)?;
        self.pixels.visit_state(PIXELS, v)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;

    use super::*;
    use crate::state::{Loader, Saver};

    /// One 2x2 image of dim 2: pixels (1, 0), (0, 1) of class 0, (0.6, 0.8) of class
    /// 1 and one ignored pixel.
    #[test]
    fn segments_are_normalised_means_and_pixels_are_sampled_per_class() {
        let gpu = Gpu::shared().unwrap();
        let mut m = PixelMemory::new(&gpu, 3, 4, 2, 10, 255).unwrap();
        assert!(m.rows().unwrap().is_none());
        // [B=1, D=2, 2x2]: channel 0 then channel 1.
        let emb = [1.0, 0.0, 0.6, 0.3, 0.0, 1.0, 0.8, 0.4];
        let labels = [0, 0, 1, 255];
        let mut rng = StdRng::seed_from_u64(0);
        m.enqueue(&emb, &labels, 1, &mut rng).unwrap();
        let rows = m.rows().unwrap().unwrap();
        // Segments of classes 0 and 1, then 2 pixels of class 0 and 1 of class 1.
        assert_eq!(rows.labels_host, vec![0, 1, 0, 0, 1]);
        assert_eq!(rows.labels.to_vec_u32().unwrap(), rows.labels_host);
        let f = rows.features.to_vec().unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        for (got, want) in f[..4].iter().zip([h, h, 0.6, 0.8]) {
            assert!((got - want).abs() < 1e-6, "{f:?}");
        }
        let mut pixels: Vec<[f32; 2]> = f[4..8].chunks(2).map(|p| [p[0], p[1]]).collect();
        pixels.sort_by(|a, b| a[0].total_cmp(&b[0]));
        assert_eq!(pixels, vec![[0.0, 1.0], [1.0, 0.0]]);
        // A checkpoint round trip restores rows and pointers.
        let mut saved = Saver::default();
        m.visit_state(&mut saved).unwrap();
        let tensors: HashMap<String, Tensor> = saved.tensors.into_iter().collect();
        let mut restored = PixelMemory::new(&gpu, 3, 4, 2, 10, 255).unwrap();
        let mut loader = Loader {
            tensors: &tensors,
            meta: &saved.meta,
        };
        restored.visit_state(&mut loader).unwrap();
        let again = restored.rows().unwrap().unwrap();
        assert_eq!(again.labels_host, rows.labels_host);
        assert_eq!(again.features.to_vec().unwrap(), f);
        assert!(m.enqueue(&emb, &labels[..3], 1, &mut rng).is_err());
    }
}
