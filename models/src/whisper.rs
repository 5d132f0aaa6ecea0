//! CTranslate2 Whisper → whisper.cpp's ggml file.
//!
//! The layout is the one openai-whisper checkpoints get from whisper.cpp's
//! `convert-pt-to-ggml.py` (and `quantize` for Q8_0/Q5_0):
//!
//! ```text
//! i32 magic "ggml" | 11 × i32 hparams (vocab, audio ctx/state/head/layer,
//!   text ctx/state/head/layer, mels, ftype)
//! i32 n_mel, i32 n_fft_bins, f32 filters…            (librosa Slaney mel filterbank)
//! i32 n_tokens, n × (i32 len, bytes)                  (the byte-level BPE tokens)
//! tensors: i32 dims, i32 name_len, i32 type, i32 ne[dims] (fastest first), name, data
//! ```
//!
//! CTranslate2 fuses attention projections: self-attention's `linear_0` is
//! `[q; k; v]` and cross-attention's `linear_1` is `[k; v]` (rows); whisper has no key
//! bias, so the fused bias's key part (zeros) is dropped. Small tensors (biases, norms,
//! positional embeddings) are stored as f32, conv kernels as f16, the matrices as f16
//! or quantised.

use std::io::Write;

use half::f16;

use crate::ct2::{Ct2Model, DType, Var};
use crate::error::{Error, Result};
use crate::mel::mel_filters;
use crate::quant::{WeightType, quantize_q5_0, quantize_q8_0};

/// `"ggml"` read as a little-endian i32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// The hyper-parameters of a ggml Whisper file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size (51864 English-only, 51865 multilingual).
    pub n_vocab: usize,
    /// Encoder positions (1500).
    pub n_audio_ctx: usize,
    /// Encoder width.
    pub n_audio_state: usize,
    /// Encoder heads.
    pub n_audio_head: usize,
    /// Encoder layers.
    pub n_audio_layer: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    /// Decoder width.
    pub n_text_state: usize,
    /// Decoder heads.
    pub n_text_head: usize,
    /// Decoder layers.
    pub n_text_layer: usize,
    /// Mel bins (80; 128 for large-v3).
    pub n_mels: usize,
}

impl Hparams {
    /// Whether the vocabulary is the multilingual one (language tokens, detection).
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// Reads them from a CTranslate2 Whisper model.
    pub fn of(m: &Ct2Model<'_>) -> Result<Hparams> {
        let emb = m.require("decoder/embeddings/weight")?;
        let epos = m.require("encoder/position_encodings/encodings")?;
        let dpos = m.require("decoder/position_encodings/encodings")?;
        let conv1 = m.require("encoder/conv1/weight")?;
        let dims2 = |name: &str, v: &Var<'_>| match v.shape[..] {
            [a, b] => Ok((a, b)),
            _ => Err(Error::BadVariable {
                name: name.to_owned(),
                what: "expected a matrix",
            }),
        };
        let (n_vocab, n_text_state) = dims2("decoder/embeddings/weight", emb)?;
        let (n_audio_ctx, n_audio_state) = dims2("encoder/position_encodings/encodings", epos)?;
        let (n_text_ctx, _) = dims2("decoder/position_encodings/encodings", dpos)?;
        let n_mels = match conv1.shape[..] {
            [_, mels, 3] => mels,
            _ => {
                return Err(Error::BadVariable {
                    name: "encoder/conv1/weight".into(),
                    what: "expected [state, mels, 3]",
                });
            }
        };
        let heads = |name: &str| -> Result<usize> {
            m.require(name)?
                .scalar_int()
                .and_then(|h| usize::try_from(h).ok())
                .filter(|&h| h > 0)
                .ok_or_else(|| Error::BadVariable {
                    name: name.to_owned(),
                    what: "expected a positive integer scalar",
                })
        };
        let layers = |side: &str| {
            (0..)
                .take_while(|i| {
                    m.get(&format!("{side}/layer_{i}/ffn/linear_0/weight"))
                        .is_some()
                })
                .count()
        };
        Ok(Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: heads("encoder/num_heads")?,
            n_audio_layer: layers("encoder"),
            n_text_ctx,
            n_text_state,
            n_text_head: heads("decoder/num_heads")?,
            n_text_layer: layers("decoder"),
            n_mels,
        })
    }
}

/// How many tokens a ggml Whisper file lists.
pub const GGML_TOKENS: usize = 50_257;

/// GPT-2's byte ↔ printable-character table, inverted: a vocabulary character → byte.
fn byte_decoder() -> std::collections::HashMap<char, u8> {
    let mut map = std::collections::HashMap::with_capacity(256);
    let mut n = 0u32;
    for b in 0u8..=255 {
        let printable = matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
        let ch = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        map.insert(ch, b);
    }
    map
}

/// The ggml token table from CTranslate2's `vocabulary.txt` (one byte-level BPE token a
/// line): the first [`GGML_TOKENS`] (GPT-2's 256 bytes, 50,000 merges and one more:
/// `<|endoftext|>` in the English vocabulary, the last merge in the multilingual one),
/// as whisper.cpp's converter writes them from openai-whisper's tiktoken files; whisper.cpp
/// names the special tokens after them itself.
pub fn ggml_tokens(vocabulary: &str) -> Result<Vec<Vec<u8>>> {
    let dec = byte_decoder();
    let mut out = Vec::new();
    for (i, line) in vocabulary.lines().enumerate() {
        let bytes = line
            .chars()
            .map(|ch| {
                dec.get(&ch)
                    .copied()
                    .ok_or(Error::Vocabulary { line: i + 1, ch })
            })
            .collect::<Result<Vec<u8>>>()?;
        out.push(bytes);
        if out.len() == GGML_TOKENS {
            break;
        }
    }
    Ok(out)
}

/// Progress of a conversion: tensors written of the total.
pub trait ConvertProgress {
    /// Called after each tensor.
    fn tensor(&mut self, done: usize, total: usize);
}

impl ConvertProgress for () {
    fn tensor(&mut self, _: usize, _: usize) {}
}

/// How a tensor is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    F32,
    F16,
    Weight,
}

struct Plan<'m, 'a> {
    name: String,
    var: &'m Var<'a>,
    /// Row range of the source matrix (or element range of a vector).
    rows: std::ops::Range<usize>,
    /// ggml dimensions, fastest first.
    ne: Vec<usize>,
    store: Store,
}

/// Plans one tensor: ggml name, CTranslate2 source, part `(i, n)` of a fused matrix.
type AddTensor<'x> = dyn FnMut(String, &str, Option<(usize, usize)>, Store) -> Result<()> + 'x;

fn plan<'m, 'a>(m: &'m Ct2Model<'a>, h: &Hparams) -> Result<Vec<Plan<'m, 'a>>> {
    let mut out = Vec::new();
    let mut add = |name: String, src: &str, part: Option<(usize, usize)>, store: Store| {
        let var = m.require(src)?;
        let rows_total = *var.shape.first().ok_or_else(|| Error::BadVariable {
            name: src.to_owned(),
            what: "expected a tensor, got a scalar",
        })?;
        let rows = match part {
            None => 0..rows_total,
            Some((i, n)) => {
                if rows_total % n != 0 {
                    return Err(Error::BadVariable {
                        name: src.to_owned(),
                        what: "fused projection does not split evenly",
                    });
                }
                let k = rows_total / n;
                i * k..(i + 1) * k
            }
        };
        let mut ne: Vec<usize> = var.shape.iter().rev().copied().collect();
        if let Some(last) = ne.last_mut() {
            *last = rows.len();
        }
        if name.ends_with("conv1.bias") || name.ends_with("conv2.bias") {
            ne = vec![1, rows.len()];
        }
        out.push(Plan {
            name,
            var,
            rows,
            ne,
            store,
        });
        Ok(())
    };
    use Store::{F16, F32, Weight};
    add(
        "encoder.positional_embedding".into(),
        "encoder/position_encodings/encodings",
        None,
        F32,
    )?;
    for c in ["conv1", "conv2"] {
        add(
            format!("encoder.{c}.weight"),
            &format!("encoder/{c}/weight"),
            None,
            F16,
        )?;
        add(
            format!("encoder.{c}.bias"),
            &format!("encoder/{c}/bias"),
            None,
            F32,
        )?;
    }
    let attn = |add: &mut AddTensor<'_>, dst: &str, src: &str, fused: bool| -> Result<()> {
        let qkv = if fused { Some(3) } else { None };
        let (q_src, kv_src, out_src) = if fused {
            (
                format!("{src}/linear_0"),
                format!("{src}/linear_0"),
                format!("{src}/linear_1"),
            )
        } else {
            (
                format!("{src}/linear_0"),
                format!("{src}/linear_1"),
                format!("{src}/linear_2"),
            )
        };
        let (k_part, v_part) = match qkv {
            Some(n) => ((1, n), (2, n)),
            None => ((0, 2), (1, 2)),
        };
        add(
            format!("{dst}.query.weight"),
            &format!("{q_src}/weight"),
            qkv.map(|n| (0, n)),
            Weight,
        )?;
        add(
            format!("{dst}.query.bias"),
            &format!("{q_src}/bias"),
            qkv.map(|n| (0, n)),
            F32,
        )?;
        add(
            format!("{dst}.key.weight"),
            &format!("{kv_src}/weight"),
            Some(k_part),
            Weight,
        )?;
        add(
            format!("{dst}.value.weight"),
            &format!("{kv_src}/weight"),
            Some(v_part),
            Weight,
        )?;
        add(
            format!("{dst}.value.bias"),
            &format!("{kv_src}/bias"),
            Some(v_part),
            F32,
        )?;
        add(
            format!("{dst}.out.weight"),
            &format!("{out_src}/weight"),
            None,
            Weight,
        )?;
        add(
            format!("{dst}.out.bias"),
            &format!("{out_src}/bias"),
            None,
            F32,
        )?;
        add(
            format!("{dst}_ln.weight"),
            &format!("{src}/layer_norm/gamma"),
            None,
            F32,
        )?;
        add(
            format!("{dst}_ln.bias"),
            &format!("{src}/layer_norm/beta"),
            None,
            F32,
        )
    };
    let mlp = |add: &mut AddTensor<'_>, dst: &str, src: &str| -> Result<()> {
        for (d, s) in [("0", "linear_0"), ("2", "linear_1")] {
            add(
                format!("{dst}.mlp.{d}.weight"),
                &format!("{src}/ffn/{s}/weight"),
                None,
                Weight,
            )?;
            add(
                format!("{dst}.mlp.{d}.bias"),
                &format!("{src}/ffn/{s}/bias"),
                None,
                F32,
            )?;
        }
        add(
            format!("{dst}.mlp_ln.weight"),
            &format!("{src}/ffn/layer_norm/gamma"),
            None,
            F32,
        )?;
        add(
            format!("{dst}.mlp_ln.bias"),
            &format!("{src}/ffn/layer_norm/beta"),
            None,
            F32,
        )
    };
    for i in 0..h.n_audio_layer {
        let (dst, src) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        attn(
            &mut add,
            &format!("{dst}.attn"),
            &format!("{src}/self_attention"),
            true,
        )?;
        mlp(&mut add, &dst, &src)?;
    }
    add(
        "encoder.ln_post.weight".into(),
        "encoder/layer_norm/gamma",
        None,
        F32,
    )?;
    add(
        "encoder.ln_post.bias".into(),
        "encoder/layer_norm/beta",
        None,
        F32,
    )?;
    add(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings",
        None,
        F32,
    )?;
    add(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight",
        None,
        Weight,
    )?;
    for i in 0..h.n_text_layer {
        let (dst, src) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        attn(
            &mut add,
            &format!("{dst}.attn"),
            &format!("{src}/self_attention"),
            true,
        )?;
        attn(
            &mut add,
            &format!("{dst}.cross_attn"),
            &format!("{src}/attention"),
            false,
        )?;
        mlp(&mut add, &dst, &src)?;
    }
    add(
        "decoder.ln.weight".into(),
        "decoder/layer_norm/gamma",
        None,
        F32,
    )?;
    add(
        "decoder.ln.bias".into(),
        "decoder/layer_norm/beta",
        None,
        F32,
    )?;
    Ok(out)
}

/// The source rows of a planned tensor as raw f16 bits, or f32 values.
enum Elems {
    F16(Vec<u16>),
    F32(Vec<f32>),
}

fn elems(p: &Plan<'_, '_>) -> Result<Elems> {
    let row: usize = p.var.shape.iter().skip(1).product();
    let esz = p.var.dtype.size();
    let bytes = &p.var.data[p.rows.start * row * esz..p.rows.end * row * esz];
    Ok(match p.var.dtype {
        DType::F16 => Elems::F16(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        DType::F32 => Elems::F32(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        DType::Bf16 => Elems::F32(
            bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
        ),
        _ => {
            return Err(Error::BadVariable {
                name: p.name.clone(),
                what: "integer (CTranslate2-quantised) weights are not supported; use a float16 or float32 checkpoint",
            });
        }
    })
}

fn to_f32(e: Elems) -> Vec<f32> {
    match e {
        Elems::F32(v) => v,
        Elems::F16(v) => v.into_iter().map(|b| f16::from_bits(b).to_f32()).collect(),
    }
}

fn w32(out: &mut impl Write, v: i32) -> std::io::Result<()> {
    out.write_all(&v.to_le_bytes())
}

/// Writes the ggml model for `model` (a CTranslate2 `WhisperSpec`) with its
/// `vocabulary.txt`, the large matrices as `wtype`.
pub fn convert(
    model: &Ct2Model<'_>,
    vocabulary: &str,
    wtype: WeightType,
    out: &mut impl Write,
    progress: &mut dyn ConvertProgress,
) -> Result<Hparams> {
    if model.spec != "WhisperSpec" {
        return Err(Error::BadVariable {
            name: model.spec.clone(),
            what: "not a Whisper model (spec name)",
        });
    }
    let h = Hparams::of(model)?;
    let tokens = ggml_tokens(vocabulary)?;
    let plan = plan(model, &h)?;
    let io = |e: std::io::Error| Error::Io {
        path: "<ggml output>".into(),
        source: e,
    };
    let hdr = [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
    ];
    out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for v in hdr {
        w32(out, v as i32).map_err(io)?;
    }
    w32(out, wtype.file_ftype()).map_err(io)?;
    let n_fft = 400;
    let filters = mel_filters(16_000.0, n_fft, h.n_mels);
    w32(out, h.n_mels as i32).map_err(io)?;
    w32(out, (n_fft / 2 + 1) as i32).map_err(io)?;
    let mut buf: Vec<u8> = filters.iter().flat_map(|f| f.to_le_bytes()).collect();
    out.write_all(&buf).map_err(io)?;
    w32(out, tokens.len() as i32).map_err(io)?;
    for t in &tokens {
        w32(out, t.len() as i32).map_err(io)?;
        out.write_all(t).map_err(io)?;
    }
    let total = plan.len();
    for (i, p) in plan.iter().enumerate() {
        let n: usize = p.ne.iter().product();
        let quantise = p.store == Store::Weight && wtype != WeightType::F16;
        if quantise && p.ne[0] % crate::quant::BLOCK != 0 {
            return Err(Error::BadVariable {
                name: p.name.clone(),
                what: "rows are not a multiple of the 32-weight quantisation block",
            });
        }
        let ttype = match (p.store, wtype) {
            (Store::F32, _) => 0,
            (Store::F16, _) | (Store::Weight, WeightType::F16) => 1,
            (Store::Weight, q) => q.ggml_type(),
        };
        w32(out, p.ne.len() as i32).map_err(io)?;
        w32(out, p.name.len() as i32).map_err(io)?;
        w32(out, ttype).map_err(io)?;
        for &d in &p.ne {
            w32(out, d as i32).map_err(io)?;
        }
        out.write_all(p.name.as_bytes()).map_err(io)?;
        let e = elems(p)?;
        buf.clear();
        match ttype {
            0 => buf.extend(to_f32(e).iter().flat_map(|f| f.to_le_bytes())),
            1 => match e {
                Elems::F16(v) => buf.extend(v.iter().flat_map(|b| b.to_le_bytes())),
                Elems::F32(v) => buf.extend(
                    v.iter()
                        .flat_map(|&f| f16::from_f32(f).to_bits().to_le_bytes()),
                ),
            },
            _ => {
                let x = to_f32(e);
                match wtype {
                    WeightType::Q8_0 => quantize_q8_0(&x, &mut buf),
                    _ => quantize_q5_0(&x, &mut buf),
                }
            }
        }
        debug_assert!(ttype != 0 || buf.len() == 4 * n);
        out.write_all(&buf).map_err(io)?;
        progress.tensor(i + 1, total);
    }
    out.flush().map_err(io)?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_tokens_decode_to_bytes() {
        let t = ggml_tokens("!\nĠthe\nĊ\n<|endoftext|>\n").expect("ok");
        assert_eq!(
            t,
            vec![
                b"!".to_vec(),
                b" the".to_vec(),
                b"\n".to_vec(),
                b"<|endoftext|>".to_vec()
            ]
        );
        assert!(matches!(
            ggml_tokens("a\n\u{4e00}\n"),
            Err(Error::Vocabulary { line: 2, .. })
        ));
    }
}
