//! Kernel registry: compiles each shader once, reflects the buffers every entry point
//! binds (with naga, so the Rust side never repeats a layout by hand) and caches
//! pipelines by (shader, entry point, specialisation constants).

use std::collections::HashMap;
use std::path::PathBuf;

use super::interface;
use super::shader_source::{self, CheckedShader};
use crate::error::{Error, Result};

/// A kernel to dispatch: a shader file's stem, an entry point and the values of its
/// `override` constants.
#[derive(Clone, Copy, Debug)]
pub struct Kernel<'a> {
    pub shader: &'static str,
    pub entry: &'static str,
    pub constants: &'a [(&'static str, f64)],
}

impl Kernel<'static> {
    pub const fn new(shader: &'static str, entry: &'static str) -> Self {
        Kernel {
            shader,
            entry,
            constants: &[],
        }
    }
}

impl<'a> Kernel<'a> {
    /// `shader:entry`, with its override constants where it sets any
    /// (`conv2d:forward[CB=1,HAS_BIAS=0]`), so a profile tells specialisations apart.
    pub fn label(&self) -> String {
        let mut s = format!("{}:{}", self.shader, self.entry);
        if !self.constants.is_empty() {
            let c: Vec<String> = self
                .constants
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!("[{}]", c.join(",")));
        }
        s
    }

    pub fn with<'b>(self, constants: &'b [(&'static str, f64)]) -> Kernel<'b> {
        Kernel {
            shader: self.shader,
            entry: self.entry,
            constants,
        }
    }
}

/// What an entry point binds in group 0, in binding order.
#[derive(Clone, Debug)]
pub struct EntryBindings {
    /// Storage buffers: (binding, read_only).
    pub storage: Vec<(u32, bool)>,
    /// The uniform parameter block's binding, if the entry uses one.
    pub uniform: Option<u32>,
    /// Its struct's fields as (name, byte offset), `_`-named padding left out: what
    /// a dispatch's [`Params`](super::params::Params) must fill.
    pub uniform_fields: Vec<(String, u32)>,
}

pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub bindings: EntryBindings,
}

struct CompiledShader {
    module: wgpu::ShaderModule,
    checked: CheckedShader,
}

type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

pub struct KernelRegistry {
    override_dir: Option<PathBuf>,
    shaders: HashMap<&'static str, CompiledShader>,
    pipelines: HashMap<PipelineKey, std::rc::Rc<Pipeline>>,
}

pub(super) fn reflect(checked: &CheckedShader, shader: &str, entry: &str) -> Result<EntryBindings> {
    let index = checked
        .module
        .entry_points
        .iter()
        .position(|e| e.name == entry)
        .ok_or_else(|| Error::Shader(format!("shader {shader} has no entry point {entry:?}")))?;
    let uses = checked.info.get_entry_point(index);
    let mut storage = Vec::new();
    let mut uniform = None;
    let mut uniform_fields = Vec::new();
    for (handle, var) in checked.module.global_variables.iter() {
        let Some(binding) = &var.binding else {
            continue;
        };
        if uses[handle].is_empty() {
            continue;
        }
        if binding.group != 0 {
            return Err(Error::Shader(format!(
                "shader {shader}: only @group(0) is supported, found group {}",
                binding.group
            )));
        }
        match var.space {
            naga::AddressSpace::Storage { access } => storage.push((
                binding.binding,
                !access.contains(naga::StorageAccess::STORE),
            )),
            naga::AddressSpace::Uniform => {
                if uniform.replace(binding.binding).is_some() {
                    return Err(Error::Shader(format!(
                        "shader {shader}:{entry}: at most one uniform block is supported"
                    )));
                }
                let naga::TypeInner::Struct { members, .. } = &checked.module.types[var.ty].inner
                else {
                    return Err(Error::Shader(format!(
                        "shader {shader}:{entry}: the uniform block must be a struct"
                    )));
                };
                uniform_fields = members
                    .iter()
                    .filter_map(|m| Some((m.name.clone()?, m.offset)))
                    .filter(|(name, _)| !name.starts_with('_'))
                    .collect();
            }
            other => {
                return Err(Error::Shader(format!(
                    "shader {shader}:{entry}: unsupported binding space {other:?}"
                )))
            }
        }
    }
    storage.sort_by_key(|(b, _)| *b);
    Ok(EntryBindings {
        storage,
        uniform,
        uniform_fields,
    })
}

impl KernelRegistry {
    pub fn new(override_dir: Option<PathBuf>) -> Self {
        KernelRegistry {
            override_dir,
            shaders: HashMap::new(),
            pipelines: HashMap::new(),
        }
    }

    pub fn override_dir(&self) -> Option<&std::path::Path> {
        self.override_dir.as_deref()
    }

    fn shader(&mut self, device: &wgpu::Device, name: &'static str) -> Result<&CompiledShader> {
        if !self.shaders.contains_key(name) {
            let src = shader_source::load(name, self.override_dir.as_deref())?;
            let checked = shader_source::check(&src)?;
            if self.override_dir.is_some() {
                interface::check_against_builtin(&src, &checked)?;
            }
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.text.into()),
            });
            self.shaders
                .insert(name, CompiledShader { module, checked });
        }
        Ok(&self.shaders[name])
    }

    /// The cached pipeline for `kernel`, built on first use.
    pub fn pipeline(
        &mut self,
        device: &wgpu::Device,
        kernel: &Kernel,
    ) -> Result<std::rc::Rc<Pipeline>> {
        let key: PipelineKey = (
            kernel.shader,
            kernel.entry,
            kernel
                .constants
                .iter()
                .map(|(k, v)| (*k, v.to_bits()))
                .collect(),
        );
        if let Some(p) = self.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let shader = self.shader(device, kernel.shader)?;
        let bindings = reflect(&shader.checked, kernel.shader, kernel.entry)?;
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .storage
            .iter()
            .map(|&(binding, read_only)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        if let Some(binding) = bindings.uniform {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let label = format!("{}:{}", kernel.shader, kernel.entry);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &shader.module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: kernel.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader(format!("pipeline {label}: {err}")));
        }
        let p = std::rc::Rc::new(Pipeline {
            pipeline,
            layout,
            bindings,
        });
        self.pipelines.insert(key, p.clone());
        Ok(p)
    }
}
