//! The GPU runtime: device, buffer pool, kernel registry and the pending command
//! encoder that every op records into. Work is submitted only when a result is read
//! back, a host upload needs ordering, or [`Gpu::flush`] is called, so a training step
//! becomes a handful of submissions rather than one per op.

pub mod adapter;
mod interface;
mod kernels;
pub mod params;
mod pool;
pub mod profile;
pub mod shader_source;
mod watchdog;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use kernels::Kernel;
pub use pool::{size_class, PoolStats};

use crate::error::{Error, Result};
use kernels::KernelRegistry;
use params::Params;
use pool::BufferPool;
use profile::Profile;

/// Usage of every tensor buffer.
const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const READBACK_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
/// Uniform parameter blocks of one submission share one buffer at dynamic offsets.
const PARAMS_CAPACITY: u64 = 1 << 18;

/// Threads per workgroup of the 1-D kernels (elementwise, copies, reductions).
pub const WORKGROUP: u32 = 256;

/// A cheap, clonable handle to one device and its queue.
#[derive(Clone)]
pub struct Gpu(Rc<GpuInner>);

pub struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pool: RefCell<BufferPool>,
    readback: RefCell<BufferPool>,
    kernels: RefCell<KernelRegistry>,
    pending: RefCell<Pending>,
    error: Arc<Mutex<Option<String>>>,
    submissions: Cell<u64>,
    readbacks: Cell<u64>,
    dispatches: Cell<u64>,
    /// Recording while `Some`: every dispatch is then timed alone.
    profile: RefCell<Option<Profile>>,
    /// Ends the process when a submission or a wait hangs.
    watchdog: watchdog::Watchdog,
}

struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    /// The open compute pass of `encoder`: dispatches share one pass, since lavapipe
    /// pays a fixed cost per pass that outweighs a small kernel's work. A copy or a
    /// submission ends it.
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    dispatches: u64,
}

impl std::ops::Deref for Gpu {
    type Target = GpuInner;
    fn deref(&self) -> &GpuInner {
        &self.0
    }
}

thread_local! {
    static SHARED: RefCell<Option<Gpu>> = const { RefCell::new(None) };
}

impl Gpu {
    /// Opens the adapter chosen by the environment with its real limits.
    pub fn new() -> Result<Gpu> {
        Self::with_choice(&adapter::AdapterChoice::default())
    }

    /// Opens the adapter of an explicit choice (an experiment's `device` section).
    pub fn with_choice(choice: &adapter::AdapterChoice) -> Result<Gpu> {
        Self::from_adapter(&adapter::choose(choice)?)
    }

    /// One device per thread, opened on first use: tests and the CLI share it.
    pub fn shared() -> Result<Gpu> {
        SHARED.with(|s| {
            if let Some(g) = s.borrow().as_ref() {
                return Ok(g.clone());
            }
            let g = Gpu::new()?;
            *s.borrow_mut() = Some(g.clone());
            Ok(g)
        })
    }

    pub fn from_adapter(adapter: &wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SHADER_F16;
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgseg"),
            required_features: features,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("{} refused a device: {e}", info.name)))?;
        let error = Arc::new(Mutex::new(None::<String>));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string().lines().next().unwrap_or("").to_string());
            }
        }));
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgseg.params"),
            size: PARAMS_CAPACITY,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let limits = device.limits();
        let shader_dir = shader_source::override_dir_from_env()?;
        if let Some(d) = &shader_dir {
            shader_source::check_override_dir(d)?;
        }
        Ok(Gpu(Rc::new(GpuInner {
            features: device.features(),
            limits,
            info,
            pool: RefCell::new(BufferPool::default()),
            readback: RefCell::new(BufferPool::default()),
            kernels: RefCell::new(KernelRegistry::new(shader_dir)),
            pending: RefCell::new(Pending {
                encoder: None,
                pass: None,
                params: Vec::new(),
                params_buf,
                dispatches: 0,
            }),
            error,
            submissions: Cell::new(0),
            readbacks: Cell::new(0),
            dispatches: Cell::new(0),
            profile: RefCell::new(None),
            watchdog: watchdog::Watchdog::new(watchdog::timeout_from_env()?)?,
            device,
            queue,
        })))
    }

    /// Replaces the shader override directory (the experiment YAML's `device.shader_dir`);
    /// kernels compiled so far are dropped so the new sources take effect.
    pub fn set_shader_dir(&self, dir: Option<std::path::PathBuf>) {
        *self.kernels.borrow_mut() = KernelRegistry::new(dir);
    }

    pub fn shader_dir(&self) -> Option<std::path::PathBuf> {
        self.kernels
            .borrow()
            .override_dir()
            .map(|p| p.to_path_buf())
    }

    /// Buffer-pool counters (allocations, reuses, bytes held).
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.borrow().stats()
    }

    /// Queue submissions made so far.
    pub fn submissions(&self) -> u64 {
        self.submissions.get()
    }

    /// Copies of GPU data to the host made so far.
    pub fn readbacks(&self) -> u64 {
        self.readbacks.get()
    }

    /// Kernel dispatches and buffer copies recorded so far.
    pub fn dispatches(&self) -> u64 {
        self.dispatches.get()
    }

    /// Starts timing every dispatch alone (see [`profile`]); pending work is waited for
    /// first so that it is not counted.
    pub fn start_profile(&self) -> Result<()> {
        self.sync()?;
        *self.profile.borrow_mut() = Some(Profile::default());
        Ok(())
    }

    /// Stops timing and returns what was recorded since [`Gpu::start_profile`].
    pub fn stop_profile(&self) -> Option<Profile> {
        self.profile.borrow_mut().take()
    }

    fn profiling(&self) -> bool {
        self.profile.borrow().is_some()
    }

    /// Under a profile, waits for the work just recorded and books its time.
    fn book(&self, name: &str, since: Instant) -> Result<()> {
        self.sync()?;
        if let Some(p) = self.profile.borrow_mut().as_mut() {
            p.add(name, since.elapsed());
        }
        Ok(())
    }

    /// Frees idle pooled buffers.
    pub fn trim_pool(&self) {
        self.pool.borrow_mut().trim();
        self.readback.borrow_mut().trim();
    }

    /// A storage buffer of at least `bytes` from the pool.
    pub(crate) fn take_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let max = self.limits.max_storage_buffer_binding_size;
        if bytes > max {
            return Err(Error::Gpu(format!(
                "a tensor of {bytes} bytes exceeds this adapter's max storage binding of {max} bytes"
            )));
        }
        Ok(self
            .pool
            .borrow_mut()
            .take(&self.device, bytes, TENSOR_USAGE))
    }

    pub(crate) fn give_buffer(&self, buf: wgpu::Buffer) {
        if let Ok(mut p) = self.pool.try_borrow_mut() {
            p.give(buf);
        }
    }

    /// Writes host bytes into a buffer, after any pending work that may still read it.
    pub(crate) fn upload(&self, buf: &wgpu::Buffer, bytes: &[u8]) -> Result<()> {
        if self.pending.borrow().dispatches > 0 {
            self.flush()?;
        }
        self.queue.write_buffer(buf, 0, bytes);
        Ok(())
    }

    /// Records one dispatch of `kernel` over `groups` workgroups. `buffers` are bound to
    /// the entry point's storage bindings in binding order; `params` fills its uniform
    /// block, whose fields it must name as the shader's struct does.
    pub fn dispatch(
        &self,
        kernel: &Kernel,
        buffers: &[&wgpu::Buffer],
        params: &Params,
        groups: [u32; 3],
    ) -> Result<()> {
        let pipeline = self.kernels.borrow_mut().pipeline(&self.device, kernel)?;
        let since = if self.profiling() {
            self.sync()?;
            Some(Instant::now())
        } else {
            None
        };
        let b = &pipeline.bindings;
        if b.uniform.is_some() {
            check_fields(kernel, &b.uniform_fields, params.fields())?;
        }
        let params = params.bytes();
        if buffers.len() != b.storage.len() {
            return Err(Error::Gpu(format!(
                "kernel {}:{} binds {} storage buffers, got {}",
                kernel.shader,
                kernel.entry,
                b.storage.len(),
                buffers.len()
            )));
        }
        let max_groups = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max_groups) || groups.contains(&0) {
            return Err(Error::Gpu(format!(
                "kernel {}:{} dispatch {groups:?} is outside 1..={max_groups} workgroups per dimension",
                kernel.shader, kernel.entry
            )));
        }
        let align = self.limits.min_uniform_buffer_offset_alignment as usize;
        let padded = params.len().div_ceil(16).max(1) * 16;
        if padded as u64 > PARAMS_CAPACITY {
            return Err(Error::Gpu(format!(
                "kernel {}: parameter block too large",
                kernel.entry
            )));
        }
        if self.pending.borrow().params.len().div_ceil(align) * align + padded
            > PARAMS_CAPACITY as usize
        {
            self.flush()?;
        }
        let mut pending = self.pending.borrow_mut();
        let offset = pending.params.len().div_ceil(align) * align;
        if b.uniform.is_some() {
            pending.params.resize(offset, 0);
            pending.params.extend_from_slice(params);
            pending.params.resize(offset + padded, 0);
        }
        let mut entries: Vec<wgpu::BindGroupEntry> = b
            .storage
            .iter()
            .zip(buffers)
            .map(|(&(binding, _), buf)| wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            })
            .collect();
        if let Some(binding) = b.uniform {
            entries.push(wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &pending.params_buf,
                    offset: 0,
                    size: std::num::NonZeroU64::new(padded as u64),
                }),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.layout,
            entries: &entries,
        });
        let offsets: &[u32] = if b.uniform.is_some() {
            &[offset as u32]
        } else {
            &[]
        };
        let open = &mut *pending;
        let pass = match &mut open.pass {
            Some(pass) => pass,
            slot => {
                let encoder = open.encoder.get_or_insert_with(|| {
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("wgseg.step"),
                        })
                });
                let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                });
                slot.insert(pass.forget_lifetime())
            }
        };
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, offsets);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        pending.dispatches += 1;
        drop(pending);
        self.dispatches.set(self.dispatches.get() + 1);
        match since {
            Some(t) => self.book(&kernel.label(), t),
            None => Ok(()),
        }
    }

    /// Records a buffer-to-buffer copy into the pending encoder.
    pub(crate) fn copy(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        let mut pending = self.pending.borrow_mut();
        pending.pass = None;
        let encoder = pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgseg.step"),
                })
        });
        encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        pending.dispatches += 1;
        self.dispatches.set(self.dispatches.get() + 1);
    }

    /// Submits everything recorded so far in one queue submission.
    pub fn flush(&self) -> Result<()> {
        let mut pending = self.pending.borrow_mut();
        pending.pass = None;
        if let Some(encoder) = pending.encoder.take() {
            if !pending.params.is_empty() {
                self.queue
                    .write_buffer(&pending.params_buf, 0, &pending.params);
            }
            let _busy = self.watchdog.watch("a submission");
            self.queue.submit([encoder.finish()]);
            self.submissions.set(self.submissions.get() + 1);
        }
        pending.params.clear();
        pending.dispatches = 0;
        drop(pending);
        self.check_error()
    }

    /// Sets the watchdog's limit from the experiment's `device.timeout_s`.
    pub fn set_timeout(&self, seconds: f64) -> Result<()> {
        self.watchdog
            .set_limit(watchdog::timeout(seconds, "device.timeout_s")?);
        Ok(())
    }

    /// Waits for all submitted work, under the watchdog.
    fn wait(&self) -> Result<()> {
        let _busy = self.watchdog.watch("a wait for the GPU");
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        Ok(())
    }

    /// Turns an error wgpu reported asynchronously into an `Err`.
    pub fn check_error(&self) -> Result<()> {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Waits for all submitted work.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.wait()?;
        self.check_error()
    }

    /// Copies `bytes` bytes of `buf` to the host (flushes pending work first).
    pub(crate) fn read_bytes(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self
            .readback
            .borrow_mut()
            .take(&self.device, bytes, READBACK_USAGE);
        self.copy(buf, &staging, bytes.div_ceil(4) * 4);
        self.flush()?;
        self.readbacks.set(self.readbacks.get() + 1);
        let slice = staging.slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| Error::Gpu(format!("readback: {e}")))?
            .map_err(|e| Error::Gpu(format!("readback: {e}")))?;
        let out = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("readback: {e}")))?
            .to_vec();
        staging.unmap();
        self.readback.borrow_mut().give(staging);
        self.check_error()?;
        Ok(out)
    }

    /// A workgroup grid covering `threads` invocations of `per_group` each: 2-D when
    /// one dimension's limit is not enough. Kernels rebuild the linear index from
    /// `num_workgroups`.
    pub fn grid(&self, threads: u64, per_group: u32) -> [u32; 3] {
        let groups = threads.div_ceil(per_group as u64).max(1);
        let max = self.limits.max_compute_workgroups_per_dimension as u64;
        if groups <= max {
            [groups as u32, 1, 1]
        } else {
            let y = groups.div_ceil(max);
            [groups.div_ceil(y) as u32, y as u32, 1]
        }
    }
}

/// The first difference between the uniform struct's fields and those `params` named.
fn check_fields(kernel: &Kernel, wgsl: &[(String, u32)], rust: &[(&str, u32)]) -> Result<()> {
    let n = wgsl.len().max(rust.len());
    for i in 0..n {
        let (w, r) = (wgsl.get(i), rust.get(i));
        if w.map(|(name, off)| (name.as_str(), *off)) != r.copied() {
            let show = |f: Option<(&str, u32)>| match f {
                Some((name, off)) => format!("`{name}` at byte {off}"),
                None => "nothing".to_string(),
            };
            return Err(Error::Shader(format!(
                "kernel {}:{}: uniform field {i} is {} in the shader's struct, but the engine fills {}",
                kernel.shader,
                kernel.entry,
                show(w.map(|(name, off)| (name.as_str(), *off))),
                show(r.copied())
            )));
        }
    }
    Ok(())
}
