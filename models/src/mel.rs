//! The mel filterbank whisper uses, computed the way librosa's `filters.mel` does
//! (Slaney mel scale and area normalisation, float64 arithmetic, float32 result), which
//! is how openai-whisper's `mel_filters.npz` was made.

/// `n_mels × (1 + n_fft / 2)` weights, row-major, for `sample_rate` Hz and an `n_fft`
/// point FFT, from 0 Hz to Nyquist.
pub fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = 1 + n_fft / 2;
    // numpy.fft.rfftfreq(n_fft, d = 1 / sr): arange * (1 / (n * d)).
    let val = 1.0 / (n_fft as f64 * (1.0 / sample_rate));
    let fftfreqs: Vec<f64> = (0..n_freqs).map(|i| i as f64 * val).collect();
    // mel_frequencies(n_mels + 2, fmin = 0, fmax = sr / 2): numpy.linspace in mel, back to Hz.
    let n = n_mels + 2;
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let step = (hi - lo) / (n - 1) as f64;
    let mel_f: Vec<f64> = (0..n)
        .map(|i| if i == n - 1 { hi } else { i as f64 * step + lo })
        .map(mel_to_hz)
        .collect();
    let mut weights = vec![0f32; n_mels * n_freqs];
    for i in 0..n_mels {
        let fdiff_lo = mel_f[i + 1] - mel_f[i];
        let fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (j, &f) in fftfreqs.iter().enumerate() {
            let lower = -(mel_f[i] - f) / fdiff_lo;
            let upper = (mel_f[i + 2] - f) / fdiff_hi;
            // numpy.minimum / numpy.maximum as their SIMD loops (minpd/maxpd) compute
            // them: on ties the second operand wins, so max(0, -0.0) is -0.0 (the
            // first weight of openai-whisper's filterbank is -0.0).
            let m = if lower < upper { lower } else { upper };
            let w = if 0.0 > m { 0.0 } else { m } as f32;
            // `weights *= enorm[:, None]`: float32 × float64 computed in float64.
            weights[i * n_freqs + j] = (f64::from(w) * enorm) as f32;
        }
    }
    weights
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_filterbank_shape_and_known_values() {
        let w = mel_filters(16_000.0, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        // Every filter has some weight; the first starts at bin 1 (40 Hz, peak 66.7 Hz).
        for i in 0..80 {
            assert!(
                w[i * 201..(i + 1) * 201].iter().any(|&x| x > 0.0),
                "mel {i}"
            );
        }
        assert_eq!(w[0].to_bits(), (-0.0f32).to_bits());
        assert_eq!(w[1], 0.024_862_595);
    }
}
