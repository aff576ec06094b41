//! F.interpolate of [N, C, H, W] maps, modes 'nearest' and 'bilinear'
//! (shaders/interpolate.wgsl). Sizes and source-index scales are resolved here exactly
//! as PyTorch does (recompute_scale_factor unset): with `scale_factor` the output is
//! floor(in * scale_factor) and sources are read at 1 / scale_factor, not in / out.

use super::attrs::AttrKind;
use super::spec::{attr, OpCall, OpSpec, INPUT};
use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::gpu::{Kernel, WORKGROUP};
use crate::tensor::elementwise::expect_f32;
use crate::tensor::{shape_str, DType, Tensor};

const OP: &str = "interpolate";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpolateMode {
    /// PyTorch's 'nearest': source index floor(dst * scale) (not 'nearest-exact').
    Nearest = 0,
    Bilinear = 1,
}

impl InterpolateMode {
    pub fn parse(mode: &str) -> Result<Self> {
        match mode {
            "nearest" => Ok(InterpolateMode::Nearest),
            "bilinear" => Ok(InterpolateMode::Bilinear),
            other => Err(Error::op(
                OP,
                format!("mode must be \"nearest\" or \"bilinear\", got {other:?}"),
            )),
        }
    }
}

/// One resolved resize: output [H, W] and the f32 source scale of each axis that the
/// kernels multiply output indices by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resize {
    pub mode: InterpolateMode,
    pub align_corners: bool,
    pub out: [usize; 2],
    pub scale: [f32; 2],
}

/// PyTorch's per-axis source scale (area_pixel_compute_scale for bilinear,
/// nearest_idx's scale for nearest), in f32 as its CPU kernels compute it.
fn source_scale(
    mode: InterpolateMode,
    align_corners: bool,
    n_in: usize,
    n_out: usize,
    scale_factor: Option<f64>,
) -> f32 {
    // PyTorch copies an axis whose size is unchanged, whatever scale_factor says
    // (e.g. 3 * 1.2 -> 3), and nearest halves indices when the size doubles: scales
    // 1 and 0.5 reproduce both exactly.
    if n_out == n_in {
        return 1.0;
    }
    match mode {
        InterpolateMode::Nearest if n_out == 2 * n_in => 0.5,
        InterpolateMode::Bilinear if align_corners => {
            if n_out > 1 {
                (n_in - 1) as f32 / (n_out - 1) as f32
            } else {
                0.0
            }
        }
        _ => match scale_factor {
            Some(f) => (1.0 / f) as f32,
            None => n_in as f32 / n_out as f32,
        },
    }
}

impl Resize {
    /// Resolves F.interpolate's arguments for an input of `in_hw`: exactly one of
    /// `size` and `scale_factor` must be given.
    pub fn plan(
        in_hw: [usize; 2],
        size: Option<[usize; 2]>,
        scale_factor: Option<f64>,
        mode: InterpolateMode,
        align_corners: bool,
    ) -> Result<Resize> {
        if align_corners && mode == InterpolateMode::Nearest {
            return Err(Error::op(
                OP,
                "align_corners can only be set with mode \"bilinear\"",
            ));
        }
        let out = match (size, scale_factor) {
            (Some(_), Some(_)) => {
                return Err(Error::op(OP, "give only one of size and scale_factor"))
            }
            (None, None) => return Err(Error::op(OP, "either size or scale_factor must be given")),
            (Some(s), None) => s,
            (None, Some(f)) => {
                if !(f.is_finite() && f > 0.0) {
                    return Err(Error::op(
                        OP,
                        format!("scale_factor must be a positive number, got {f}"),
                    ));
                }
                in_hw.map(|n| (n as f64 * f).floor() as usize)
            }
        };
        if out.contains(&0) || out[0].saturating_mul(out[1]) > u32::MAX as usize {
            return Err(Error::op(
                OP,
                format!(
                    "output size must be positive and fit 32-bit indexing, got {}x{} from input {}x{}",
                    out[0], out[1], in_hw[0], in_hw[1]
                ),
            ));
        }
        let scale =
            [0, 1].map(|a| source_scale(mode, align_corners, in_hw[a], out[a], scale_factor));
        Ok(Resize {
            mode,
            align_corners,
            out,
            scale,
        })
    }

    fn dispatch(
        &self,
        entry: &'static str,
        from: &Tensor,
        to: &Tensor,
        nchw: &[usize],
    ) -> Result<()> {
        let n = to.numel();
        let p = Params::new(OP)
            .idx("n", n)?
            .idx("in_h", nchw[2])?
            .idx("in_w", nchw[3])?
            .idx("out_h", self.out[0])?
            .idx("out_w", self.out[1])?
            .f32("scale_h", self.scale[0])
            .f32("scale_w", self.scale[1]);
        let consts = [
            ("MODE", self.mode as u32 as f64),
            ("ALIGN_CORNERS", self.align_corners as u32 as f64),
        ];
        let gpu = from.gpu();
        gpu.dispatch(
            &Kernel::new("interpolate", entry).with(&consts),
            &[from.buffer(), to.buffer()],
            &p,
            gpu.grid(n as u64, WORKGROUP),
        )
    }
}

fn nchw(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::op(
            op,
            format!("input must be [N, C, H, W], got {}", shape_str(shape)),
        )),
    }
}

/// F.interpolate(x, size, scale_factor, mode, align_corners).
pub fn interpolate(
    x: &Tensor,
    size: Option<[usize; 2]>,
    scale_factor: Option<f64>,
    mode: InterpolateMode,
    align_corners: bool,
) -> Result<Tensor> {
    let [_, _, h, w] = nchw(OP, x.shape())?;
    resize(
        x,
        &Resize::plan([h, w], size, scale_factor, mode, align_corners)?,
    )
}

/// Applies a resize planned for `x`'s spatial size.
pub fn resize(x: &Tensor, r: &Resize) -> Result<Tensor> {
    expect_f32(OP, "input", x)?;
    let [n, c, _, _] = nchw(OP, x.shape())?;
    let out = Tensor::empty(x.gpu(), &[n, c, r.out[0], r.out[1]], DType::F32)?;
    r.dispatch("forward", x, &out, x.shape())?;
    Ok(out)
}

/// Gradient of the resize `r` with respect to an input of `input_shape`.
pub fn resize_backward(g: &Tensor, input_shape: &[usize], r: &Resize) -> Result<Tensor> {
    let op = "interpolate_backward";
    let [n, c, _, _] = nchw(op, input_shape)?;
    let want = [n, c, r.out[0], r.out[1]];
    if g.shape() != want {
        return Err(Error::op(
            op,
            format!(
                "grad_output is {}, expected {}",
                shape_str(g.shape()),
                shape_str(&want)
            ),
        ));
    }
    let dx = Tensor::empty(g.gpu(), input_shape, DType::F32)?;
    r.dispatch("backward", g, &dx, input_shape)?;
    Ok(dx)
}

impl Var {
    /// F.interpolate with exactly one of `size` ([H, W]) and `scale_factor`.
    pub fn interpolate(
        &self,
        size: Option<[usize; 2]>,
        scale_factor: Option<f64>,
        mode: InterpolateMode,
        align_corners: bool,
    ) -> Result<Var> {
        let x = self.value();
        let [_, _, h, w] = nchw(OP, x.shape())?;
        let r = Resize::plan([h, w], size, scale_factor, mode, align_corners)?;
        let out = resize(&x, &r)?;
        let shape = x.shape().to_vec();
        Ok(Var::from_op(out, &[self], move |g| {
            Ok(vec![Some(resize_backward(g, &shape, &r)?)])
        }))
    }
}

fn run(c: &OpCall) -> Result<Var> {
    let a = &c.attrs;
    let size = match a.opt_ints("size")?.as_deref() {
        None => None,
        Some(s) => {
            let dims = match *s {
                [v] => [v, v],
                [h, w] => [h, w],
                _ => [0, 0],
            };
            if dims.iter().any(|&v| v < 1) {
                return Err(Error::op(
                    OP,
                    format!("size must be one positive int or an (h, w) pair of them, got {s:?}"),
                ));
            }
            Some(dims.map(|v| v as usize))
        }
    };
    // 0 stands for PyTorch's None: a zero factor is invalid there anyway.
    let f = a.float("scale_factor")?;
    let scale_factor = (f != 0.0).then_some(f);
    c.input("input")?.interpolate(
        size,
        scale_factor,
        InterpolateMode::parse(a.str("mode")?)?,
        a.bool("align_corners")?,
    )
}

pub static OPS: &[OpSpec] = &[OpSpec {
    name: "interpolate",
    summary: "resize [N,C,H,W] to size or by scale_factor (0 = unset), mode nearest or bilinear",
    inputs: INPUT,
    attrs: &[
        attr("size", AttrKind::OptInts, Some("none")),
        attr("scale_factor", AttrKind::Float, Some("0")),
        attr("mode", AttrKind::Str, Some("nearest")),
        attr("align_corners", AttrKind::Bool, Some("false")),
    ],
    run,
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    #[test]
    fn scales_and_sizes_follow_pytorch() {
        let near = InterpolateMode::Nearest;
        let bil = InterpolateMode::Bilinear;
        let r = Resize::plan([5, 4], None, Some(1.5), bil, false).unwrap();
        assert_eq!(r.out, [7, 6]);
        assert_eq!(r.scale, [(1.0 / 1.5) as f32; 2]);
        let r = Resize::plan([5, 4], Some([9, 1]), None, bil, true).unwrap();
        assert_eq!(r.scale, [0.5, 0.0]);
        let r = Resize::plan([3, 3], Some([6, 3]), None, near, false).unwrap();
        assert_eq!(r.scale, [0.5, 1.0]);
        for mode in [near, bil] {
            let r = Resize::plan([3, 5], None, Some(1.2), mode, false).unwrap();
            assert_eq!(r.out, [3, 6]);
            assert_eq!(r.scale, [1.0, (1.0 / 1.2) as f32]);
        }
        for (size, scale, want) in [
            (Some([2, 2]), Some(2.0), "only one"),
            (None, None, "either size"),
            (None, Some(0.1), "must be positive"),
            (None, Some(-1.0), "positive number"),
        ] {
            let e = Resize::plan([3, 3], size, scale, bil, false).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let e = Resize::plan([3, 3], Some([4, 4]), None, near, true).unwrap_err();
        assert!(e.to_string().contains("align_corners"), "{e}");
    }

    #[test]
    fn nearest_downscale_picks_floor_indices() {
        let gpu = Gpu::shared().unwrap();
        let data: Vec<f32> = (0..7).map(|v| v as f32).collect();
        let x = Tensor::from_slice(&gpu, &data, &[1, 1, 1, 7]).unwrap();
        let y = interpolate(&x, Some([1, 3]), None, InterpolateMode::Nearest, false).unwrap();
        // scale 7/3: floor(0), floor(2.33), floor(4.67)
        assert_eq!(y.to_vec().unwrap(), vec![0.0, 2.0, 4.0]);
    }
}
