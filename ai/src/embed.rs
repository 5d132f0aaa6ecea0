//! Sentence embeddings: all-MiniLM-L6-v2 (or any BERT in the sentence-transformers
//! layout) on candle, in pure Rust, offline.
//!
//! The model directory holds `config.json`, `model.safetensors` (F16 or F32; computed in
//! F32) and `tokenizer.json` — the layout of `../shared/models/all-MiniLM-L6-v2/` and of
//! `parley models install`. An embedding is the mean of the last hidden states over the
//! real tokens (padding masked), L2-normalised: cosine similarity is a dot product.
//! Texts are cut at [`MAX_TOKENS`] tokens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// The longest input in tokens (the model's `max_seq_length`); longer texts are cut.
pub const MAX_TOKENS: usize = 256;

/// Texts embedded in one forward pass at most (longer lists are split).
pub const BATCH: usize = 32;

/// A loaded sentence-embedding model. Cheap to share behind an `Arc`; [`Embedder::embed`]
/// may be called from many threads (the tokenizer is behind a lock, the model is not).
pub struct Embedder {
    model: BertModel,
    tokenizer: Mutex<Tokenizer>,
    device: Device,
    dim: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .finish()
    }
}

/// Dot product of two vectors of the same length (cosine similarity of embeddings).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Embedder {
    /// Loads the model in `dir` (see the module doc) on the CPU.
    pub fn load(dir: impl AsRef<Path>) -> Result<Embedder> {
        let dir = dir.as_ref();
        let file = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::ModelMissing {
                    path: p.display().to_string(),
                })
            }
        };
        let config_path = file("config.json")?;
        let weights_path = file("model.safetensors")?;
        let tokenizer_path = file("tokenizer.json")?;
        let config: Config =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| Error::ModelInvalid {
                path: config_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let invalid = |p: &Path, e: &dyn std::fmt::Display| Error::ModelInvalid {
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        let device = Device::Cpu;
        // Buffered, not memory-mapped: the workspace forbids `unsafe`. The F16 weights
        // are converted to F32 on load (computed in F32, as the model card says).
        let vb = VarBuilder::from_buffered_safetensors(read(&weights_path)?, DType::F32, &device)
            .map_err(|e| invalid(&weights_path, &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| invalid(&weights_path, &e))?;
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| invalid(&tokenizer_path, &e))?;
        // The file pads every input to 128 and cuts at 128; pad a batch to its longest
        // text instead and cut at the model's 256.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| invalid(&tokenizer_path, &e))?;
        Ok(Embedder {
            model,
            tokenizer: Mutex::new(tokenizer),
            device,
            dim: config.hidden_size,
            dir: dir.to_owned(),
        })
    }

    /// The embedding's dimension (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let mut v = self.embed(&[text])?;
        v.pop().ok_or(Error::Inference {
            reason: "no embedding returned".into(),
        })
    }

    /// The embeddings of `texts` (unit vectors, in order), in batches of [`BATCH`].
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Very long inputs are cut in characters first: the tokenizer would otherwise
        // split megabytes into words only to keep 256 tokens.
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| clip_chars(t, MAX_TOKENS * 16))
            .collect();
        let encodings = {
            let tok = self.tokenizer.lock().map_err(|_| Error::Inference {
                reason: "tokenizer lock poisoned".into(),
            })?;
            tok.encode_batch(inputs, true)
                .map_err(|e| Error::Inference {
                    reason: format!("tokenizer: {e}"),
                })?
        };
        let n = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().map(|&x| x as i64));
            types.extend(e.get_type_ids().iter().map(|&x| x as i64));
            mask.extend(e.get_attention_mask().iter().map(|&x| x as i64));
        }
        let t = |v: Vec<i64>| Tensor::from_vec(v, (n, len), &self.device);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = t(ids)?;
            let types = t(types)?;
            let mask = t(mask)?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
            let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (n, dim)
            let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| Error::Inference {
            reason: e.to_string(),
        })
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::Io {
        path: p.display().to_string(),
        source: e,
    })
}

/// At most `max` characters of `s` (whole characters).
pub(crate) fn clip_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}
