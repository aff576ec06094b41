//! `wgseg info`: what device the kernels will run on.

use std::process::ExitCode;

use crate::error::Result;
use crate::gpu::Gpu;

pub fn run() -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let i = &gpu.info;
    let l = &gpu.limits;
    let f = gpu.features;
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("adapter            {}", i.name);
    println!("backend            {:?}", i.backend);
    println!("device type        {:?}", i.device_type);
    println!("driver             {} {}", i.driver, i.driver_info);
    println!(
        "storage buffers    {} per stage",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "max binding        {} MiB storage, {} KiB uniform",
        l.max_storage_buffer_binding_size >> 20,
        l.max_uniform_buffer_binding_size >> 10
    );
    println!("max buffer         {} MiB", l.max_buffer_size >> 20);
    println!(
        "workgroup storage  {} KiB",
        l.max_compute_workgroup_storage_size >> 10
    );
    println!(
        "invocations        {} per workgroup ({} x {} x {})",
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z
    );
    println!(
        "workgroups         {} per dimension",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "subgroups          {}",
        yes(f.contains(wgpu::Features::SUBGROUP))
    );
    println!(
        "f16                {}",
        yes(f.contains(wgpu::Features::SHADER_F16))
    );
    println!(
        "timestamp queries  {}",
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY))
    );
    match gpu.shader_dir() {
        Some(d) => println!("shader overrides   {}", d.display()),
        None => println!("shader overrides   none (set WGSEG_SHADER_DIR)"),
    }
    Ok(ExitCode::SUCCESS)
}
