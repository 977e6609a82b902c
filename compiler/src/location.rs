//! Source locations, spelled as MLIR spells them: `loc("model.onnx":12:3)`, `loc("conv1")`,
//! `loc("conv1"("model.onnx":0:0))`, `loc(fused["a", "b"])`, `loc(unknown)`.
//!
//! Every operation carries one. Passes that replace operations give the replacement the location
//! of what it replaces (fusions use `fused[...]`), so diagnostics and reports always point back to
//! the model file.

use crate::attributes::write_string;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Location {
    #[default]
    Unknown,
    FileLineCol {
        file: Arc<str>,
        line: u32,
        col: u32,
    },
    /// A named location (an ONNX node name), optionally wrapping where the name came from.
    Name {
        name: Arc<str>,
        child: Option<Box<Location>>,
    },
    Fused(Vec<Location>),
}

impl Location {
    pub fn file(file: &str, line: u32, col: u32) -> Self {
        Location::FileLineCol { file: file.into(), line, col }
    }

    pub fn name(name: &str) -> Self {
        Location::Name { name: name.into(), child: None }
    }

    /// Combines locations of operations merged into one; nested fusions are flattened and
    /// duplicates dropped so that the result stays readable.
    pub fn fused(locations: impl IntoIterator<Item = Location>) -> Self {
        let mut parts: Vec<Location> = Vec::new();
        for loc in locations {
            let flattened = match loc {
                Location::Fused(inner) => inner,
                Location::Unknown => continue,
                other => vec![other],
            };
            for l in flattened {
                if !parts.contains(&l) {
                    parts.push(l);
                }
            }
        }
        match parts.len() {
            0 => Location::Unknown,
            1 => parts.pop().unwrap(),
            _ => Location::Fused(parts),
        }
    }

    /// The innermost file position, if any: what diagnostics point at.
    pub fn file_position(&self) -> Option<(&str, u32, u32)> {
        match self {
            Location::FileLineCol { file, line, col } => Some((file, *line, *col)),
            Location::Name { child, .. } => child.as_deref()?.file_position(),
            Location::Fused(parts) => parts.iter().find_map(Location::file_position),
            Location::Unknown => None,
        }
    }

    fn write_inner(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Unknown => f.write_str("unknown"),
            Location::FileLineCol { file, line, col } => {
                write_string(f, file)?;
                write!(f, ":{line}:{col}")
            }
            Location::Name { name, child } => {
                write_string(f, name)?;
                if let Some(child) = child {
                    f.write_str("(")?;
                    child.write_inner(f)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            Location::Fused(parts) => {
                f.write_str("fused[")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    p.write_inner(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loc(")?;
        self.write_inner(f)?;
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_locations_flatten_and_deduplicate() {
        let a = Location::name("a");
        let b = Location::file("m.onnx", 1, 2);
        let fused = Location::fused([a.clone(), Location::fused([a.clone(), b.clone()]), Location::Unknown]);
        assert_eq!(fused, Location::Fused(vec![a, b]));
        assert_eq!(fused.to_string(), "loc(fused[\"a\", \"m.onnx\":1:2])");
        assert_eq!(fused.file_position(), Some(("m.onnx", 1, 2)));
    }
}
