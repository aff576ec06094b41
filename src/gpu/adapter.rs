//! Adapter choice: `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` are honoured; otherwise the
//! primary backends are searched and a discrete GPU is preferred over an integrated
//! one, then a virtual one, then a CPU adapter (lavapipe).

use crate::error::{Error, Result};

/// The fix to print when no adapter exists at all.
pub const NO_ADAPTER_HINT: &str = "no GPU or CPU adapter found: install a Vulkan driver \
(on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` gives the lavapipe CPU device), \
or set WGPU_BACKEND to a backend this machine has";

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// Which adapter to open. `None` fields fall back to `WGPU_BACKEND` /
/// `WGPU_ADAPTER_NAME`, then to the primary backends and the preference order.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Comma-separated backend names (vulkan, metal, dx12, gl).
    pub backend: Option<String>,
    /// Case-insensitive substring of the adapter name.
    pub name: Option<String>,
}

impl AdapterChoice {
    fn backends(&self) -> Result<wgpu::Backends> {
        let (source, list) = match &self.backend {
            Some(b) => ("device.backend", b.clone()),
            None => match std::env::var("WGPU_BACKEND") {
                Ok(b) if !b.trim().is_empty() => ("WGPU_BACKEND", b),
                // Without WGPU_BACKEND only the primary backends: probing GL/EGL on a
                // headless machine prints noise and never wins anyway.
                _ => return Ok(wgpu::Backends::PRIMARY),
            },
        };
        // wgpu skips names it does not know, which would end in "no adapter".
        for name in list.split(',').map(|n| n.trim().to_lowercase()) {
            if wgpu::Backends::from_comma_list(&name).is_empty() {
                return Err(Error::Usage(format!(
                    "{source}: {name:?} is not a backend (vulkan, metal, dx12, gl)"
                )));
            }
        }
        Ok(wgpu::Backends::from_comma_list(&list))
    }

    fn name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
    }
}

/// Picks the adapter.
pub fn choose(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let backends = choice.backends()?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        return Err(Error::NoAdapter(NO_ADAPTER_HINT.to_string()));
    }
    if let Some(wanted) = choice.name() {
        let needle = wanted.to_lowercase();
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return match adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        {
            Some(a) => Ok(a),
            None => Err(Error::NoAdapter(format!(
                "adapter name {wanted:?} matches no adapter; found: {}",
                names.join(", ")
            ))),
        };
    }
    adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
    Ok(adapters.remove(0))
}
