//! Diagnostics: `file:line:col: error: message`, the source line, and a caret under the column.
//!
//! Every user-facing failure (parse, verify, pass, import) becomes a [`Diagnostic`] with the
//! location of what went wrong; [`SourceMap`] renders it against the text it came from.

use crate::location::Location;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Location,
    pub message: String,
    pub notes: Vec<Diagnostic>,
}

impl Diagnostic {
    pub fn error(loc: Location, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, loc, message: message.into(), notes: Vec::new() }
    }

    pub fn with_note(mut self, loc: Location, message: impl Into<String>) -> Self {
        self.notes.push(Diagnostic { severity: Severity::Note, loc, message: message.into(), notes: Vec::new() });
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&SourceMap::default().render(self))
    }
}

impl std::error::Error for Diagnostic {}

/// The texts diagnostics may point into, by file name.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<(Arc<str>, Arc<str>)>,
}

impl SourceMap {
    pub fn add(&mut self, name: &str, text: &str) {
        self.files.push((name.into(), text.into()));
    }

    fn line(&self, file: &str, line: u32) -> Option<&str> {
        let (_, text) = self.files.iter().find(|(n, _)| &**n == file)?;
        text.lines().nth(line.checked_sub(1)? as usize)
    }

    /// Renders a diagnostic and its notes, each with the source line and caret when known.
    pub fn render(&self, d: &Diagnostic) -> String {
        let mut out = String::new();
        self.render_into(d, &mut out);
        out
    }

    fn render_into(&self, d: &Diagnostic, out: &mut String) {
        use std::fmt::Write;
        match d.loc.file_position() {
            Some((file, line, col)) => {
                let _ = writeln!(out, "{file}:{line}:{col}: {}: {}", d.severity, d.message);
                if let Some(text) = self.line(file, line) {
                    let _ = writeln!(out, "{text}");
                    let pad: String = text
                        .chars()
                        .take(col.saturating_sub(1) as usize)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    let _ = writeln!(out, "{pad}^");
                }
            }
            None => {
                let _ = match &d.loc {
                    Location::Name { name, .. } => writeln!(out, "{name}: {}: {}", d.severity, d.message),
                    _ => writeln!(out, "{}: {}", d.severity, d.message),
                };
            }
        }
        for note in &d.notes {
            self.render_into(note, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_the_line_and_a_caret() {
        let mut sources = SourceMap::default();
        sources.add("a.mlir", "first\n  %0 = bad\n");
        let d = Diagnostic::error(Location::file("a.mlir", 2, 8), "unknown thing");
        assert_eq!(sources.render(&d), "a.mlir:2:8: error: unknown thing\n  %0 = bad\n       ^\n");
    }
}
