//! Textual pipelines, MLIR style: `builtin.module(canonicalize{max-iterations=4},cse)`. The
//! `builtin.module(...)` wrapper is optional; options are space-separated `key=value` pairs.

use crate::options::Options;

/// One pass of a parsed pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineEntry {
    pub name: String,
    pub options: Options,
}

pub fn parse_pipeline(text: &str) -> Result<Vec<PipelineEntry>, String> {
    let mut body = text.trim();
    if let Some(rest) = body.strip_prefix("builtin.module(") {
        body = rest.strip_suffix(')').ok_or("pipeline 'builtin.module(' is missing its closing ')'")?;
    }
    let mut entries = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let name_end = rest.find(['{', ',']).unwrap_or(rest.len());
        let name = rest[..name_end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
            return Err(format!("invalid pass name '{name}' in pipeline"));
        }
        rest = &rest[name_end..];
        let mut options = Options::default();
        if let Some(after) = rest.strip_prefix('{') {
            let close = after.find('}').ok_or_else(|| format!("options of '{name}' are missing their closing '}}'"))?;
            for pair in after[..close].split_whitespace() {
                let (k, v) =
                    pair.split_once('=').ok_or_else(|| format!("option '{pair}' of '{name}' is not key=value"))?;
                options.0.insert(k.to_string(), v.to_string());
            }
            rest = &after[close + 1..];
        }
        entries.push(PipelineEntry { name: name.to_string(), options });
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("pipeline ends with ','".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("expected ',' in pipeline before '{rest}'"));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_parse_with_and_without_wrapper() {
        let p = parse_pipeline("builtin.module(canonicalize{max-iterations=3},cse)").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].options.0["max-iterations"], "3");
        assert_eq!(parse_pipeline("dce, cse").unwrap()[1].name, "cse");
        assert!(parse_pipeline("cse,").is_err());
        assert!(parse_pipeline("canonicalize{max-iterations=3").is_err());
    }
}
