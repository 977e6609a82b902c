//! Pass options: what a pass declares (`PassOption`) and what a pipeline gives (`Options`),
//! as in `canonicalize{max-iterations=4}`.

use std::collections::BTreeMap;

/// One named option of a pass (`canonicalize{max-iterations=4}`).
pub struct PassOption {
    pub name: &'static str,
    pub help: &'static str,
    pub default: &'static str,
}

/// Option values given in a pipeline, checked against the pass's declared options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options(pub BTreeMap<String, String>);

impl Options {
    /// The value of `name` parsed as `T`, or its declared default.
    pub fn get<T: std::str::FromStr>(&self, info_options: &[PassOption], name: &str) -> Result<T, String> {
        let default = info_options.iter().find(|o| o.name == name).map(|o| o.default).unwrap_or("");
        let text = self.0.get(name).map_or(default, String::as_str);
        text.parse().map_err(|_| format!("invalid value '{text}' for option '{name}'"))
    }
}
