//! Buffer pool: storage buffers are handed out by size class and come back when the
//! tensor that held them drops, so a repeated training step allocates nothing new
//! after its first run. Size classes are 4..7 x 2^k bytes (at most 25% slack).

use std::collections::HashMap;

/// Counters a test or benchmark can read to prove a loop is allocation-free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created with the device since start.
    pub allocations: u64,
    /// Requests served from a returned buffer.
    pub reuses: u64,
    /// Bytes held by live and idle pooled buffers.
    pub bytes_held: u64,
    /// Buffers idle in the pool.
    pub idle: u64,
}

/// Rounds a byte size up to its size class.
pub fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    let top = 63 - bytes.leading_zeros() as u64; // floor(log2)
    if top < 2 {
        return 16;
    }
    let quarter = 1u64 << (top - 2);
    bytes.div_ceil(quarter) * quarter
}

#[derive(Default)]
pub struct BufferPool {
    idle: HashMap<(u64, u32), Vec<wgpu::Buffer>>,
    stats: PoolStats,
}

impl BufferPool {
    /// A buffer of at least `bytes` with `usage`; reused when one is idle.
    pub fn take(
        &mut self,
        device: &wgpu::Device,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let class = size_class(bytes);
        if let Some(buf) = self
            .idle
            .get_mut(&(class, usage.bits()))
            .and_then(|v| v.pop())
        {
            self.stats.reuses += 1;
            self.stats.idle -= 1;
            return buf;
        }
        self.stats.allocations += 1;
        self.stats.bytes_held += class;
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgseg.pool"),
            size: class,
            usage,
            mapped_at_creation: false,
        })
    }

    /// Returns a buffer for reuse.
    pub fn give(&mut self, buf: wgpu::Buffer) {
        self.stats.idle += 1;
        self.idle
            .entry((buf.size(), buf.usage().bits()))
            .or_default()
            .push(buf);
    }

    /// Frees every idle buffer (e.g. between experiments with different shapes).
    pub fn trim(&mut self) {
        for (_, bufs) in self.idle.drain() {
            for b in bufs {
                self.stats.bytes_held -= b.size();
                b.destroy();
            }
        }
        self.stats.idle = 0;
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_and_bound_slack() {
        for bytes in [1u64, 4, 16, 17, 100, 1000, 4096, 4097, 1 << 20, 12345678] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c <= (bytes.max(16) * 5).div_ceil(4) + 16, "{bytes} -> {c}");
            assert_eq!(c % 4, 0);
        }
        assert_eq!(size_class(4096), 4096);
        assert_eq!(size_class(4097), 5120);
    }
}
