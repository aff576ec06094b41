//! The sizes of one convolution, checked as PyTorch checks them, and the uniform
//! block its kernels read (shaders/include/conv2d_params.wgsl).

use super::kernels::Launch;
use super::OP;
use crate::error::{Error, Result};
use crate::gpu::params::Params;
use crate::tensor::shape_str;

/// conv2d's attributes, per (height, width) axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Every size of one convolution: input [n, cin, h, w], weight
/// [cout, cin / groups, kh, kw], output [n, cout, hout, wout].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub hout: usize,
    pub wout: usize,
    pub params: Conv2dParams,
}

/// Extent of a dilated kernel (saturating: absurd attributes fail the fit test).
fn span(k: usize, dil: usize) -> usize {
    dil.saturating_mul(k - 1).saturating_add(1)
}

/// Extent of a padded input.
fn padded(size: usize, pad: usize) -> usize {
    size.saturating_add(pad.saturating_mul(2))
}

/// Output size along one axis, or None when the dilated kernel does not fit.
fn out_size(size: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    padded(size, pad)
        .checked_sub(span(k, dil))
        .map(|v| v / stride + 1)
}

impl Conv2dGeometry {
    /// Checks the shapes and attributes of a convolution as PyTorch does.
    pub fn new(input: &[usize], weight: &[usize], p: Conv2dParams) -> Result<Self> {
        let &[n, cin, h, w] = input else {
            return Err(Error::op(
                OP,
                format!(
                    "input must be 4-D [N, C_in, H, W], got {}",
                    shape_str(input)
                ),
            ));
        };
        let &[cout, cg, kh, kw] = weight else {
            return Err(Error::op(
                OP,
                format!(
                    "weight must be 4-D [C_out, C_in/groups, kH, kW], got {}",
                    shape_str(weight)
                ),
            ));
        };
        for (name, shape) in [("input", input), ("weight", weight)] {
            if shape.contains(&0) {
                return Err(Error::op(
                    OP,
                    format!("{name} {} has a zero-sized dim", shape_str(shape)),
                ));
            }
        }
        let g = p.groups;
        if g == 0 {
            return Err(Error::op(OP, "groups must be at least 1, got 0"));
        }
        for (name, v) in [("stride", p.stride), ("dilation", p.dilation)] {
            if v.contains(&0) {
                return Err(Error::op(
                    OP,
                    format!("{name} must be at least 1, got ({}, {})", v[0], v[1]),
                ));
            }
        }
        if !cin.is_multiple_of(g) {
            return Err(Error::op(
                OP,
                format!("input channels {cin} are not divisible by groups={g}"),
            ));
        }
        if !cout.is_multiple_of(g) {
            return Err(Error::op(
                OP,
                format!(
                    "weight {} has {cout} output channels, not divisible by groups={g}",
                    shape_str(weight)
                ),
            ));
        }
        if cg != cin / g {
            return Err(Error::op(
                OP,
                format!(
                    "weight {} takes {cg} input channels per group, but input {} with groups={g} has {}",
                    shape_str(weight),
                    shape_str(input),
                    cin / g
                ),
            ));
        }
        let (s, pd, d) = (p.stride, p.padding, p.dilation);
        let (Some(hout), Some(wout)) = (
            out_size(h, kh, s[0], pd[0], d[0]),
            out_size(w, kw, s[1], pd[1], d[1]),
        ) else {
            return Err(Error::op(
                OP,
                format!(
                    "kernel {kh}x{kw} with dilation ({}, {}) spans {}x{}, larger than the padded input {}x{}",
                    d[0],
                    d[1],
                    span(kh, d[0]),
                    span(kw, d[1]),
                    padded(h, pd[0]),
                    padded(w, pd[1])
                ),
            ));
        };
        Ok(Conv2dGeometry {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            hout,
            wout,
            params: p,
        })
    }

    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }

    pub fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin / self.params.groups, self.kh, self.kw]
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.hout, self.wout]
    }

    /// Input and output channels per group.
    pub(super) fn group_channels(&self) -> (usize, usize) {
        let g = self.params.groups;
        (self.cin / g, self.cout / g)
    }

    /// The kernels' uniform block: the geometry, then the launch layout of one kernel.
    pub(super) fn uniforms(&self, l: &Launch) -> Result<Params> {
        let (cg, coutg) = self.group_channels();
        let p = &self.params;
        let mut b = Params::new(OP);
        for (name, v) in [
            ("n", self.n),
            ("cin", self.cin),
            ("h", self.h),
            ("w", self.w),
            ("cout", self.cout),
            ("hout", self.hout),
            ("wout", self.wout),
            ("kh", self.kh),
            ("kw", self.kw),
            ("sh", p.stride[0]),
            ("sw", p.stride[1]),
            ("ph", p.padding[0]),
            ("pw", p.padding[1]),
            ("dh", p.dilation[0]),
            ("dw", p.dilation[1]),
            ("cg", cg),
            ("coutg", coutg),
            ("cblocks", l.cblocks),
            ("wblocks", l.wblocks),
            ("units", l.units),
        ] {
            b = b.idx(name, v)?;
        }
        Ok(b)
    }
}

/// Floating-point operations of the forward pass (2 per multiply-add); each backward
/// kernel does the same number.
pub fn conv2d_flops(g: &Conv2dGeometry) -> f64 {
    let (cg, _) = g.group_channels();
    [g.n, g.cout, g.hout, g.wout, cg, g.kh, g.kw]
        .iter()
        .fold(2.0, |acc, &v| acc * v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(input: &[usize], weight: &[usize], p: Conv2dParams) -> String {
        match Conv2dGeometry::new(input, weight, p) {
            Ok(g) => format!("{:?}", g.output_shape()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        let p = Conv2dParams {
            stride: [2, 1],
            padding: [6, 1],
            dilation: [6, 2],
            groups: 2,
        };
        // H: (9 + 12 - 13) / 2 + 1 = 5; W: (8 + 2 - 3) / 1 + 1 = 8.
        assert_eq!(geometry(&[1, 4, 9, 8], &[6, 2, 3, 2], p), "[1, 6, 5, 8]");
    }

    #[test]
    fn bad_shapes_are_named() {
        let d = Conv2dParams::default();
        let g2 = Conv2dParams { groups: 2, ..d };
        let cases = [
            (geometry(&[3, 8, 8], &[4, 3, 3, 3], d), "input must be 4-D"),
            (geometry(&[1, 3, 8, 8], &[4, 3, 3], d), "weight must be 4-D"),
            (
                geometry(&[1, 3, 8, 8], &[4, 1, 3, 3], g2),
                "not divisible by groups=2",
            ),
            (
                geometry(&[1, 4, 8, 8], &[3, 2, 3, 3], g2),
                "3 output channels, not divisible",
            ),
            (
                geometry(&[1, 4, 8, 8], &[4, 4, 3, 3], g2),
                "takes 4 input channels per group",
            ),
            (
                geometry(&[1, 3, 2, 8], &[4, 3, 3, 3], d),
                "larger than the padded input 2x8",
            ),
            (
                geometry(
                    &[1, 3, 8, 8],
                    &[4, 3, 3, 3],
                    Conv2dParams {
                        stride: [0, 1],
                        ..d
                    },
                ),
                "stride must be at least 1",
            ),
        ];
        for (got, want) in cases {
            assert!(got.contains(want), "{got:?} should mention {want:?}");
        }
    }
}
