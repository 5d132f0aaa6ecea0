//! ggml's block quantisations, bit for bit as `ggml-quants.c` (`quantize_row_*_ref`)
//! writes them: 32 weights per block, a float16 scale per block.

use half::f16;

/// Weights per block.
pub const BLOCK: usize = 32;

/// The element type of a converted model's large matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// IEEE half (what the checkpoint holds).
    F16,
    /// 8-bit: `d = max|x| / 127`, `q = round(x / d)`; 34 bytes per block.
    Q8_0,
    /// 5-bit: `d = x_maxabs / -16`, `q = x / d + 16.5` clipped to 31; 22 bytes per block.
    Q5_0,
}

impl WeightType {
    /// ggml's `ggml_type` number.
    pub fn ggml_type(self) -> i32 {
        match self {
            WeightType::F16 => 1,
            WeightType::Q5_0 => 6,
            WeightType::Q8_0 => 8,
        }
    }

    /// The model file's `ftype` header field (`ggml_ftype` + 1000 × quantisation
    /// version 2 for quantised files), as whisper.cpp's `quantize` writes it.
    pub fn file_ftype(self) -> i32 {
        match self {
            WeightType::F16 => 1,
            WeightType::Q8_0 => 2000 + 7,
            WeightType::Q5_0 => 2000 + 8,
        }
    }

    /// Bytes for `n` weights (`n` a multiple of [`BLOCK`] for quantised types).
    pub fn bytes(self, n: usize) -> usize {
        match self {
            WeightType::F16 => 2 * n,
            WeightType::Q8_0 => n / BLOCK * 34,
            WeightType::Q5_0 => n / BLOCK * 22,
        }
    }

    /// A short name (`f16`, `q8_0`, `q5_0`).
    pub fn name(self) -> &'static str {
        match self {
            WeightType::F16 => "f16",
            WeightType::Q8_0 => "q8_0",
            WeightType::Q5_0 => "q5_0",
        }
    }
}

/// Appends the Q8_0 blocks of `x` (`x.len()` a multiple of [`BLOCK`]) to `out`.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    for b in x.chunks_exact(BLOCK) {
        let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        for &v in b {
            out.push(((v * id).round() as i32) as i8 as u8);
        }
    }
}

/// Appends the Q5_0 blocks of `x` (`x.len()` a multiple of [`BLOCK`]) to `out`.
pub fn quantize_q5_0(x: &[f32], out: &mut Vec<u8>) {
    for b in x.chunks_exact(BLOCK) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in b {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        let mut qh = 0u32;
        let mut qs = [0u8; BLOCK / 2];
        for j in 0..BLOCK / 2 {
            // C: MIN(31, (int8_t)(x * id + 16.5f)); the cast truncates toward zero.
            let q = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
            let (x0, x1) = (q(b[j]), q(b[j + BLOCK / 2]));
            qs[j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
            qh |= u32::from((x0 & 0x10) >> 4) << j;
            qh |= u32::from((x1 & 0x10) >> 4) << (j + BLOCK / 2);
        }
        out.extend_from_slice(&qh.to_le_bytes());
        out.extend_from_slice(&qs);
    }
}

/// Dequantises Q8_0 blocks (for tests and error measurement).
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / 34 * BLOCK);
    for blk in bytes.chunks_exact(34) {
        let d = f16::from_bits(u16::from_le_bytes([blk[0], blk[1]])).to_f32();
        out.extend(blk[2..].iter().map(|&q| f32::from(q as i8) * d));
    }
    out
}

/// Dequantises Q5_0 blocks (for tests and error measurement).
pub fn dequantize_q5_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 22 * BLOCK];
    for (o, blk) in out.chunks_exact_mut(BLOCK).zip(bytes.chunks_exact(22)) {
        let d = f16::from_bits(u16::from_le_bytes([blk[0], blk[1]])).to_f32();
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        for j in 0..BLOCK / 2 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + BLOCK / 2)) & 1) << 4;
            let x0 = (u32::from(blk[6 + j] & 0x0f) | h0) as i32 - 16;
            let x1 = (u32::from(blk[6 + j] >> 4) | h1) as i32 - 16;
            o[j] = x0 as f32 * d;
            o[j + BLOCK / 2] = x1 as f32 * d;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Vec<f32> {
        (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 31.5) / 40.0)
            .collect()
    }

    #[test]
    fn q8_0_layout_and_round_trip() {
        let x = ramp();
        let mut q = Vec::new();
        quantize_q8_0(&x, &mut q);
        assert_eq!(q.len(), WeightType::Q8_0.bytes(64));
        // The largest magnitude maps to ±127.
        let amax = x[..32].iter().fold(0f32, |a, v| a.max(v.abs()));
        let i = x[..32].iter().position(|v| v.abs() == amax).expect("max");
        assert_eq!((q[2 + i] as i8).unsigned_abs(), 127);
        let back = dequantize_q8_0(&q);
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= amax / 127.0, "{a} vs {b}");
        }
        let mut z = Vec::new();
        quantize_q8_0(&[0.0; 32], &mut z);
        assert!(z.iter().all(|&b| b == 0));
    }

    #[test]
    fn q5_0_layout_and_round_trip() {
        let x = ramp();
        let mut q = Vec::new();
        quantize_q5_0(&x, &mut q);
        assert_eq!(q.len(), WeightType::Q5_0.bytes(64));
        let back = dequantize_q5_0(&q);
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= amax / 16.0 + 1e-6, "{a} vs {b}");
        }
        // The signed extreme is represented exactly (it maps to -16 · d).
        let i = x[..32]
            .iter()
            .position(|v| v.abs() == x[..32].iter().fold(0f32, |a, v| a.max(v.abs())))
            .expect("max");
        assert!((back[i] - x[i]).abs() < 1e-3);
    }
}
