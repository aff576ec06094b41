//! `wgseg op NAME --in IN.safetensors --out OUT.safetensors [--attr k=v ...]`: one op
//! on the GPU, for comparing a kernel with one's own reference. With `grad_output` in
//! IN it also runs backward and writes `grad_<input>` for every differentiable input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io;
use crate::op_table;
use crate::ops::attrs::AttrSpec;
use crate::tensor::shape_str;

#[derive(Args)]
pub struct OpArgs {
    /// Op name as in torch.nn.functional (see --list).
    name: Option<String>,
    /// Input tensors, named as the op's inputs (plus grad_output for backward).
    #[arg(long = "in", value_name = "IN.safetensors")]
    input: Option<PathBuf>,
    /// Where to write `output` (and `grad_<input>` tensors).
    #[arg(long = "out", value_name = "OUT.safetensors")]
    output: Option<PathBuf>,
    /// An attribute: integers, floats, true/false, strings, or tuples as 2,1.
    #[arg(long = "attr", value_name = "K=V")]
    attrs: Vec<String>,
    /// List every op with its inputs and attributes.
    #[arg(long)]
    list: bool,
}

fn describe_attr(a: &AttrSpec) -> String {
    match a.default {
        Some(d) => format!("{}={d} ({})", a.name, a.kind),
        None => format!("{} ({}, required)", a.name, a.kind),
    }
}

fn list() {
    for op in op_table::all() {
        let inputs: Vec<String> = op
            .inputs
            .iter()
            .map(|i| {
                let mut s = format!("{}:{}", i.name, i.dtype);
                if i.variadic {
                    s.push_str("[.0,.1,...]");
                }
                if !i.differentiable {
                    s.push_str(" (no grad)");
                }
                s
            })
            .collect();
        let attrs: Vec<String> = op.attrs.iter().map(describe_attr).collect();
        println!("{:<12} inputs: {}", op.name, inputs.join(", "));
        if !attrs.is_empty() {
            println!("{:<12} attrs:  {}", "", attrs.join(", "));
        }
        println!("{:<12} {}", "", op.summary);
    }
}

pub fn run(args: OpArgs) -> Result<ExitCode> {
    if args.list {
        list();
        return Ok(ExitCode::SUCCESS);
    }
    let name = args
        .name
        .ok_or_else(|| Error::Usage("wgseg op: give an op name (or --list)".into()))?;
    let spec = op_table::find(&name)?;
    let input = args
        .input
        .ok_or_else(|| Error::Usage(format!("wgseg op {name}: --in IN.safetensors is required")))?;
    let output = args.output.ok_or_else(|| {
        Error::Usage(format!(
            "wgseg op {name}: --out OUT.safetensors is required"
        ))
    })?;
    let attrs = args
        .attrs
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| Error::op(&name, format!("attribute {kv:?} is not K=V")))
        })
        .collect::<Result<Vec<_>>>()?;
    let gpu = Gpu::new()?;
    let mut tensors = io::read(&gpu, &input)?;
    for (file_name, t) in &tensors {
        // Integer tensors load as u32 labels; an op that wants floats names what the
        // file holds rather than the u32 it became.
        let base = file_name.split('.').next().unwrap_or(file_name);
        let wanted = spec.inputs.iter().find(|i| i.name == base);
        if let Some(i) = wanted.filter(|i| i.dtype != t.dtype()) {
            let stored = io::file_dtypes(&input)?;
            return Err(Error::op(
                &name,
                format!(
                    "input {file_name} must be {}, the file holds {}",
                    i.dtype,
                    stored
                        .get(file_name)
                        .map_or("another dtype", String::as_str)
                ),
            ));
        }
    }
    let grad_output = tensors
        .iter()
        .position(|(n, _)| n == "grad_output")
        .map(|p| tensors.remove(p).1);
    let call = spec.bind(tensors, &attrs)?;
    let out = (spec.run)(&call)?;
    let mut written = vec![("output".to_string(), out.value())];
    if let Some(mut g) = grad_output {
        // io reads a 0-d tensor as [1]; a scalar output (sum, a loss) takes it as is.
        if out.shape().is_empty() && g.shape() == [1] {
            g = g.reshape(&[])?;
        }
        if g.shape() != out.shape().as_slice() {
            return Err(Error::op(
                &name,
                format!(
                    "grad_output has shape {}, the output has {}",
                    shape_str(g.shape()),
                    shape_str(&out.shape())
                ),
            ));
        }
        let grads = out.backward_with(g)?;
        for (input_name, var) in call.named() {
            if let Some(gr) = grads.get(var) {
                written.push((format!("grad_{input_name}"), gr.clone()));
            }
        }
    }
    io::write(&output, &written)?;
    Ok(ExitCode::SUCCESS)
}
