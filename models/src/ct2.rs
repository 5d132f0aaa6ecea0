//! The CTranslate2 `model.bin` format (binary version 6): a spec name, a revision, named
//! variables (shape, data type, raw little-endian bytes) and aliases.
//!
//! ```text
//! u32 version | str spec | u32 revision | u32 n
//! n × ( str name | u8 rank | u32 dim × rank | u8 dtype | u32 nbytes | bytes )
//! u32 m | m × ( str alias | str target )          str = u16 len (incl. NUL) | utf-8 | NUL
//! ```

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The binary versions this parser reads.
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 5..=6;

/// A variable's element type, as CTranslate2 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable, borrowing its bytes from the file.
#[derive(Debug, Clone)]
pub struct Var<'a> {
    /// Row-major shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Little-endian element bytes.
    pub data: &'a [u8],
}

impl Var<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of an integer scalar.
    pub fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(*d.first()? as i8),
            DType::I16 => i64::from(i16::from_le_bytes(d.get(..2)?.try_into().ok()?)),
            DType::I32 => i64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?)),
            _ => return None,
        })
    }
}

/// A parsed model.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    /// The spec's name, e.g. `WhisperSpec`.
    pub spec: String,
    /// The spec's revision.
    pub revision: u32,
    vars: BTreeMap<String, Var<'a>>,
    aliases: BTreeMap<String, String>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(Error::Ct2 {
                what,
                offset: self.pos,
            });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        let at = self.pos;
        let n = usize::from(self.u16(what)?);
        let b = self.take(n, what)?;
        match b.split_last() {
            Some((0, s)) => String::from_utf8(s.to_vec()).map_err(|_| Error::Ct2 {
                what: "string is not UTF-8",
                offset: at,
            }),
            _ => Err(Error::Ct2 {
                what: "string is not NUL-terminated",
                offset: at,
            }),
        }
    }
}

impl<'a> Ct2Model<'a> {
    /// Parses a whole `model.bin`.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let mut c = Cursor { buf, pos: 0 };
        let version = c.u32("truncated header")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Error::Ct2 {
                what: "unsupported binary version (5 or 6 expected)",
                offset: 0,
            });
        }
        let spec = c.string("truncated spec name")?;
        let revision = c.u32("truncated revision")?;
        let n = c.u32("truncated variable count")?;
        let mut vars = BTreeMap::new();
        for _ in 0..n {
            let name = c.string("truncated variable name")?;
            let rank = c.u8("truncated rank")?;
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(c.u32("truncated shape")? as usize);
            }
            let at = c.pos;
            let dtype = DType::from_id(c.u8("truncated dtype")?).ok_or(Error::Ct2 {
                what: "unknown data type",
                offset: at,
            })?;
            let at = c.pos;
            let nbytes = c.u32("truncated size")? as usize;
            let elems = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|e| e.checked_mul(dtype.size()));
            if elems != Some(nbytes) {
                return Err(Error::Ct2 {
                    what: "variable size does not match its shape",
                    offset: at,
                });
            }
            let data = c.take(nbytes, "truncated variable data")?;
            vars.insert(name, Var { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        if c.pos < buf.len() {
            let m = c.u32("truncated alias count")?;
            for _ in 0..m {
                let alias = c.string("truncated alias")?;
                let target = c.string("truncated alias target")?;
                aliases.insert(alias, target);
            }
        }
        if c.pos != buf.len() {
            return Err(Error::Ct2 {
                what: "trailing bytes after the aliases",
                offset: c.pos,
            });
        }
        Ok(Ct2Model {
            spec,
            revision,
            vars,
            aliases,
        })
    }

    /// A variable by name (aliases resolved).
    pub fn get(&self, name: &str) -> Option<&Var<'a>> {
        self.vars
            .get(name)
            .or_else(|| self.vars.get(self.aliases.get(name)?))
    }

    /// A variable that must exist.
    pub fn require(&self, name: &str) -> Result<&Var<'a>> {
        self.get(name).ok_or_else(|| Error::MissingVariable {
            name: name.to_owned(),
        })
    }

    /// The variable names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&((v.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        s(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        s(&mut b, "encoder/num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        s(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0, 0x3c, 0, 0x40]);
        b.extend_from_slice(&1u32.to_le_bytes());
        s(&mut b, "alias");
        s(&mut b, "w");
        b
    }

    #[test]
    fn parses_variables_scalars_and_aliases() {
        let b = sample();
        let m = Ct2Model::parse(&b).expect("parse");
        assert_eq!((m.spec.as_str(), m.revision), ("WhisperSpec", 3));
        assert_eq!(
            m.require("encoder/num_heads").unwrap().scalar_int(),
            Some(6)
        );
        let w = m.get("alias").expect("alias");
        assert_eq!(
            (w.shape.as_slice(), w.dtype),
            (&[2usize, 1][..], DType::F16)
        );
        assert_eq!(w.data, &[0, 0x3c, 0, 0x40]);
    }

    #[test]
    fn truncation_and_bad_sizes_are_located() {
        let b = sample();
        for cut in [0, 3, 10, 40, b.len() - 1] {
            assert!(
                matches!(Ct2Model::parse(&b[..cut]), Err(Error::Ct2 { .. })),
                "cut at {cut}"
            );
        }
        let mut bad = b.clone();
        // The f16 variable's byte count, before its 4 data bytes, the alias count and
        // the two alias strings (8 + 4 bytes).
        let at = b.len() - (4 + 4 + 4 + 8 + 4);
        bad[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
        assert!(matches!(
            Ct2Model::parse(&bad),
            Err(Error::Ct2 { what, .. }) if what.contains("size")
        ));
    }
}
