// Bitwise, because compilers may fold comparisons with NaN or infinity away.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}
