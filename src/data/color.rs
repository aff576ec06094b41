//! Colour-space conversions shared by the synthetic generator and the colour jitter.

/// RGB in [0,1] to (hue in [0,1), saturation, value).
pub fn rgb_to_hsv(p: [f32; 3]) -> [f32; 3] {
    let max = p[0].max(p[1]).max(p[2]);
    let min = p[0].min(p[1]).min(p[2]);
    let d = max - min;
    let h = if d == 0.0 {
        0.0
    } else if max == p[0] {
        ((p[1] - p[2]) / d).rem_euclid(6.0) / 6.0
    } else if max == p[1] {
        ((p[2] - p[0]) / d + 2.0) / 6.0
    } else {
        ((p[0] - p[1]) / d + 4.0) / 6.0
    };
    let s = if max == 0.0 { 0.0 } else { d / max };
    [h, s, max]
}

/// (hue, saturation, value) back to RGB in [0,1]; hue wraps.
pub fn hsv_to_rgb(p: [f32; 3]) -> [f32; 3] {
    let (h, s, v) = (p[0].rem_euclid(1.0) * 6.0, p[1], p[2]);
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r + v - c, g + v - c, b + v - c]
}
