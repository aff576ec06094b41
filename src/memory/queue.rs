//! GPU memory banks of prototypes: a ring buffer of K rows of dimension D that
//! enqueue overwrites oldest-first, in place, with the strided copy kernel
//! (shaders/layout.wgsl; two copies when a write wraps around the end).
//!
//! The write pointer advances by the number of rows enqueued. (MaskContrast's and
//! pixel contrast's reference code advanced it by one per call, so most of a batch
//! overwrote itself; see pixel contrast issues #18/#55.)

use std::ops::Range;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::kernels::strided_copy;
use crate::state::StateVisitor;
use crate::tensor::elementwise::{expect_f32, zeros};
use crate::tensor::{shape_str, Tensor};

/// Writes `entries` [n, D] into rows `ring` (a K-row region of `data`, viewed
/// [rows, D]) from ring position `ptr` on, wrapping; when n > K only the last K rows
/// are written, as if all n had been enqueued one by one. Returns the new pointer.
fn ring_write(
    op: &str,
    data: &Tensor,
    ring: Range<usize>,
    d: usize,
    ptr: usize,
    entries: &Tensor,
) -> Result<usize> {
    expect_f32(op, "entries", entries)?;
    let n = match *entries.shape() {
        [n, ed] if ed == d => n,
        _ => {
            return Err(Error::op(
                op,
                format!(
                    "entries must be [n, {d}], got {}",
                    shape_str(entries.shape())
                ),
            ))
        }
    };
    let cap = ring.len();
    let kept = n.min(cap);
    let skipped = n - kept;
    let start = (ptr + skipped) % cap;
    let first = kept.min(cap - start);
    let segments = [
        (skipped, ring.start + start, first),
        (skipped + first, ring.start, kept - first),
    ];
    for (src_row, dst_row, rows) in segments {
        if rows > 0 {
            strided_copy(
                op,
                entries,
                data,
                &[rows * d],
                &[1],
                src_row * d,
                &[1],
                dst_row * d,
            )?;
        }
    }
    Ok((ptr + n) % cap)
}

/// A copy of `rows` rows of `data` (viewed [rows, D]) from row `from`.
fn copy_rows(op: &str, data: &Tensor, from: usize, rows: usize, d: usize) -> Result<Tensor> {
    let out = Tensor::empty(data.gpu(), &[rows, d], data.dtype())?;
    strided_copy(op, data, &out, &[rows * d], &[1], from * d, &[1], 0)?;
    Ok(out)
}

fn check_sizes(op: &str, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::op(op, format!("{name} must be >= 1"))),
        None => Ok(()),
    }
}

/// Errors unless a ring of `cap` rows can have write pointer `ptr` and `filled` rows.
fn check_state(cap: usize, ptr: usize, filled: usize) -> Result<()> {
    if ptr >= cap || filled > cap || (filled < cap && ptr != filled) {
        return Err(Error::Usage(format!(
            "queue state ptr={ptr} len={filled} is impossible for capacity {cap}"
        )));
    }
    Ok(())
}

/// A queue of the last K prototypes of dimension D (MaskContrast's memory bank).
pub struct PrototypeQueue {
    data: Tensor,
    ptr: usize,
    filled: usize,
}

impl PrototypeQueue {
    /// An empty queue of `capacity` rows of `dim` values (storage zero-filled).
    pub fn new(gpu: &Gpu, capacity: usize, dim: usize) -> Result<Self> {
        check_sizes("prototype_queue", &[("capacity", capacity), ("dim", dim)])?;
        Ok(PrototypeQueue {
            data: zeros(gpu, &[capacity, dim])?,
            ptr: 0,
            filled: 0,
        })
    }

    /// K, the number of rows it keeps.
    pub fn capacity(&self) -> usize {
        self.data.shape()[0]
    }

    pub fn dim(&self) -> usize {
        self.data.shape()[1]
    }

    /// Rows holding enqueued prototypes (at most K).
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Its storage as `<prefix>.data` and its write pointer and fill count as
    /// `<prefix>.ptr` and `<prefix>.len`, checked against the capacity on load.
    pub fn visit_state(&mut self, prefix: &str, v: &mut dyn StateVisitor) -> Result<()> {
        v.tensor(&format!("{prefix}.data"), &mut self.data)?;
        v.number(&format!("{prefix}.ptr"), &mut self.ptr)?;
        v.number(&format!("{prefix}.len"), &mut self.filled)?;
        check_state(self.capacity(), self.ptr, self.filled)
    }

    /// The row the next enqueue starts writing at.
    pub fn ptr(&self) -> usize {
        self.ptr
    }

    /// The whole [K, D] storage, unfilled rows included (zeros until written).
    pub fn data(&self) -> &Tensor {
        &self.data
    }

    /// Appends `entries` [n, D], overwriting the oldest rows; with n > K only the
    /// last K entries stay. No host round trip.
    pub fn enqueue(&mut self, entries: &Tensor) -> Result<()> {
        let cap = self.capacity();
        self.ptr = ring_write(
            "prototype_queue",
            &self.data,
            0..cap,
            self.dim(),
            self.ptr,
            entries,
        )?;
        self.filled = (self.filled + entries.shape()[0]).min(cap);
        Ok(())
    }

    /// A snapshot [len, D] of the filled rows (in storage order, not age order), or
    /// `None` while empty. It is a copy, so later enqueues do not change it (a loss's
    /// backward may still read it).
    pub fn view(&self) -> Result<Option<Tensor>> {
        // Until the first wrap the filled rows are exactly rows 0..filled.
        if self.filled == 0 {
            return Ok(None);
        }
        copy_rows("prototype_queue", &self.data, 0, self.filled, self.dim()).map(Some)
    }
}

/// One ring buffer of K rows per class, in one [C, K, D] tensor (pixel contrast's
/// per-class segment and pixel queues). The class of each enqueue is chosen on the
/// host, where the data loader keeps the labels.
pub struct ClassQueues {
    data: Tensor,
    ptr: Vec<usize>,
    filled: Vec<usize>,
}

impl ClassQueues {
    pub fn new(gpu: &Gpu, classes: usize, capacity: usize, dim: usize) -> Result<Self> {
        check_sizes(
            "class_queues",
            &[("classes", classes), ("capacity", capacity), ("dim", dim)],
        )?;
        Ok(ClassQueues {
            data: zeros(gpu, &[classes, capacity, dim])?,
            ptr: vec![0; classes],
            filled: vec![0; classes],
        })
    }

    pub fn classes(&self) -> usize {
        self.data.shape()[0]
    }

    pub fn capacity(&self) -> usize {
        self.data.shape()[1]
    }

    pub fn dim(&self) -> usize {
        self.data.shape()[2]
    }

    /// The whole [C, K, D] storage, unfilled rows included (zeros until written).
    pub fn data(&self) -> &Tensor {
        &self.data
    }

    fn class_index(&self, class: usize) -> Result<usize> {
        if class >= self.classes() {
            return Err(Error::op(
                "class_queues",
                format!(
                    "class {class} is out of range for {} classes",
                    self.classes()
                ),
            ));
        }
        Ok(class)
    }

    /// Rows of `class` holding enqueued entries (at most K).
    pub fn len(&self, class: usize) -> Result<usize> {
        Ok(self.filled[self.class_index(class)?])
    }

    /// Its storage as `<prefix>.data` and each class's write pointer and fill count
    /// as `<prefix>.<class>.ptr` and `<prefix>.<class>.len`, checked on load.
    pub fn visit_state(&mut self, prefix: &str, v: &mut dyn StateVisitor) -> Result<()> {
        v.tensor(&format!("{prefix}.data"), &mut self.data)?;
        let cap = self.capacity();
        for (class, (ptr, filled)) in self.ptr.iter_mut().zip(&mut self.filled).enumerate() {
            v.number(&format!("{prefix}.{class}.ptr"), ptr)?;
            v.number(&format!("{prefix}.{class}.len"), filled)?;
            check_state(cap, *ptr, *filled)?;
        }
        Ok(())
    }

    /// Appends `entries` [n, D] to the queue of `class` (see [`PrototypeQueue::enqueue`]).
    pub fn enqueue(&mut self, class: usize, entries: &Tensor) -> Result<()> {
        let c = self.class_index(class)?;
        let cap = self.capacity();
        self.ptr[c] = ring_write(
            "class_queues",
            &self.data,
            c * cap..(c + 1) * cap,
            self.dim(),
            self.ptr[c],
            entries,
        )?;
        self.filled[c] = (self.filled[c] + entries.shape()[0]).min(cap);
        Ok(())
    }

    /// A snapshot [len, D] of the filled rows of `class`, or `None` while empty.
    pub fn view(&self, class: usize) -> Result<Option<Tensor>> {
        let c = self.class_index(class)?;
        if self.filled[c] == 0 {
            return Ok(None);
        }
        let from = c * self.capacity();
        copy_rows("class_queues", &self.data, from, self.filled[c], self.dim()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    const D: usize = 3;

    /// Rows [id, id + 0.25, id + 0.5], so a row names its entry.
    fn rows(gpu: &Gpu, ids: Range<usize>) -> Tensor {
        let data: Vec<f32> = ids
            .clone()
            .flat_map(|i| (0..D).map(move |c| i as f32 + c as f32 * 0.25))
            .collect();
        Tensor::from_slice(gpu, &data, &[ids.len(), D]).unwrap()
    }

    /// The ids of a view's rows, sorted, after checking each row is intact.
    fn ids(view: Option<Tensor>) -> Vec<usize> {
        let Some(t) = view else { return vec![] };
        let mut out: Vec<usize> = t
            .to_vec()
            .unwrap()
            .chunks(D)
            .map(|r| {
                for (c, v) in r.iter().enumerate() {
                    assert_eq!(*v, r[0] + c as f32 * 0.25, "torn row {r:?}");
                }
                r[0] as usize
            })
            .collect();
        out.sort_unstable();
        out
    }

    fn expected(deque: &VecDeque<usize>) -> Vec<usize> {
        let mut v: Vec<usize> = deque.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Batch sizes from a fixed LCG: 1..=2K+1, so some batches wrap and some exceed K.
    fn sizes(k: usize, count: usize) -> Vec<usize> {
        let mut s = 12345u64;
        (0..count)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1 + (s >> 33) as usize % (2 * k + 1)
            })
            .collect()
    }

    #[test]
    fn queue_holds_exactly_the_last_k_entries() {
        let gpu = Gpu::shared().unwrap();
        let k = 7;
        let mut q = PrototypeQueue::new(&gpu, k, D).unwrap();
        assert!(q.view().unwrap().is_none());
        let mut deque = VecDeque::new();
        let mut next = 0;
        for n in sizes(k, 40) {
            q.enqueue(&rows(&gpu, next..next + n)).unwrap();
            for id in next..next + n {
                deque.push_back(id);
                if deque.len() > k {
                    deque.pop_front();
                }
            }
            next += n;
            assert_eq!(q.len(), deque.len());
            assert_eq!(q.ptr(), next % k);
            assert_eq!(
                ids(q.view().unwrap()),
                expected(&deque),
                "after {next} entries"
            );
        }
        let e = q.enqueue(&rows(&gpu, 0..2).reshape(&[3, 2]).unwrap());
        assert!(e.unwrap_err().to_string().contains("[n, 3]"));
    }

    #[test]
    fn class_queues_keep_the_last_k_entries_of_each_class() {
        let gpu = Gpu::shared().unwrap();
        let (classes, k) = (3, 5);
        let mut q = ClassQueues::new(&gpu, classes, k, D).unwrap();
        let mut deques = vec![VecDeque::new(); classes];
        let mut next = 0;
        for (step, n) in sizes(k, 30).into_iter().enumerate() {
            let c = (step * 7 + step / 3) % classes;
            q.enqueue(c, &rows(&gpu, next..next + n)).unwrap();
            for id in next..next + n {
                deques[c].push_back(id);
                if deques[c].len() > k {
                    deques[c].pop_front();
                }
            }
            next += n;
            for (class, deque) in deques.iter().enumerate() {
                assert_eq!(q.len(class).unwrap(), deque.len());
                assert_eq!(ids(q.view(class).unwrap()), expected(deque));
            }
        }
        assert!(q.enqueue(classes, &rows(&gpu, 0..1)).is_err());
    }
}
