//! `--verify-diagnostics`, as mlir-opt reads it: comments such as
//! `// expected-error @+1 {{does not match}}` say which diagnostics a file must produce, on
//! which line; every diagnostic produced must be expected and every expectation met.
//!
//! A designator after the kind names the line: none is the comment's own line, `@+N` / `@-N`
//! count from it, `@above` / `@below` are the nearest lines above / below that are not
//! themselves expectations. The text between `{{` and `}}` must occur in the message.
//!
//! ```
//! use smelt::verify_diagnostics::{check, expectations};
//! use smelt_compiler::diagnostics::Diagnostic;
//! use smelt_compiler::Location;
//! let text = "// expected-error @below {{bad op}}\n%0 = \"smelt.bad\"() : () -> ()\n";
//! let expected = expectations("t.mlir", text).unwrap();
//! let produced = vec![Diagnostic::error(Location::file("t.mlir", 2, 1), "'smelt.bad' op is a bad op")];
//! assert!(check("t.mlir", expected.clone(), &produced).is_empty());
//! let wrong_line = vec![Diagnostic::error(Location::file("t.mlir", 1, 1), "a bad op")];
//! assert_eq!(check("t.mlir", expected, &wrong_line).len(), 2); // unexpected, and unmet
//! ```

#![deny(missing_docs)]

use smelt_compiler::diagnostics::{Diagnostic, Severity};

/// One `expected-<kind>` comment.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// `error`, `warning`, `note` or `remark`.
    pub kind: String,
    /// The line the diagnostic must be on (1-based).
    pub line: u32,
    /// Text the message must contain.
    pub message: String,
    /// Where the comment is, for reports.
    pub comment_line: u32,
}

const KINDS: [&str; 4] = ["error", "warning", "note", "remark"];

/// The expectations written in `text` (the file `file`), or the first malformed one as
/// `file:line: error: ...`.
pub fn expectations(file: &str, text: &str) -> Result<Vec<Expectation>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let is_expectation =
        |l: &str| l.contains("expected-") && KINDS.iter().any(|k| l.contains(&format!("expected-{k}")));
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let here = i as u32 + 1;
        let bad = |why: &str| format!("{file}:{here}: error: {why}");
        let Some(comment) = line.find("//").map(|at| &line[at + 2..]) else { continue };
        let Some(start) = comment.find("expected-") else { continue };
        let rest = &comment[start + "expected-".len()..];
        let Some(kind) = KINDS.iter().find(|k| rest.starts_with(**k)) else { continue };
        let rest = rest[kind.len()..].trim_start();
        let (target, rest) = match rest.strip_prefix('@') {
            Some(designator) => {
                let end = designator.find(char::is_whitespace).unwrap_or(designator.len());
                let (word, rest) = designator.split_at(end);
                let target = match word {
                    "above" => (0..i).rev().find(|&j| !is_expectation(lines[j])).map(|j| j as i64 + 1),
                    "below" => (i + 1..lines.len()).find(|&j| !is_expectation(lines[j])).map(|j| j as i64 + 1),
                    offset => {
                        let n: i64 = offset
                            .parse()
                            .map_err(|_| bad(&format!("'@{offset}': expected @above, @below, @+N or @-N")))?;
                        Some(here as i64 + n)
                    }
                };
                match target.filter(|&t| t >= 1 && t <= lines.len() as i64) {
                    Some(t) => (t as u32, rest),
                    None => return Err(bad(&format!("'@{word}' points outside the file"))),
                }
            }
            None => (here, rest),
        };
        let rest = rest.trim_start();
        let message = rest
            .strip_prefix("{{")
            .and_then(|r| r.find("}}").map(|end| &r[..end]))
            .ok_or_else(|| bad(&format!("expected-{kind} needs its message in {{{{...}}}}")))?;
        found.push(Expectation {
            kind: kind.to_string(),
            line: target,
            message: message.to_string(),
            comment_line: here,
        });
    }
    Ok(found)
}

/// Matches `produced` (with their notes) against `expected` for the file `file`; returns one
/// line per problem, `file:line: error: ...`: a diagnostic nobody expected, or an expectation
/// nothing produced. Empty when they agree.
pub fn check(file: &str, mut expected: Vec<Expectation>, produced: &[Diagnostic]) -> Vec<String> {
    let mut all = Vec::new();
    flatten(produced, &mut all);
    let mut problems = Vec::new();
    for d in all {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let line = d.loc.file_position().filter(|(f, _, _)| *f == file).map(|(_, line, _)| line);
        let hit = line.and_then(|line| {
            expected.iter().position(|e| e.kind == kind && e.line == line && d.message.contains(&e.message))
        });
        match (hit, line) {
            (Some(i), _) => {
                expected.remove(i);
            }
            (None, Some(line)) => problems.push(format!("{file}:{line}: error: unexpected {kind}: {}", d.message)),
            (None, None) => problems.push(format!("{file}: error: unexpected {kind} ({}): {}", d.loc, d.message)),
        }
    }
    for e in expected {
        problems.push(format!(
            "{file}:{}: error: expected {} \"{}\" on line {} was not produced",
            e.comment_line, e.kind, e.message, e.line
        ));
    }
    problems
}

fn flatten<'a>(ds: &'a [Diagnostic], out: &mut Vec<&'a Diagnostic>) {
    for d in ds {
        out.push(d);
        flatten(&d.notes, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_compiler::Location;

    #[test]
    fn designators_name_the_line() {
        let text = "a\n// expected-error @above {{x}}\n// expected-note @below {{y}}\n// expected-warning@-3 {{z}}\nb\n// expected-error {{here}}\n// expected-remark @+1 {{r}}\nc\n";
        let lines: Vec<(String, u32)> =
            expectations("f", text).unwrap().into_iter().map(|e| (e.kind, e.line)).collect();
        let want = [("error", 1), ("note", 5), ("warning", 1), ("error", 6), ("remark", 8)];
        assert_eq!(lines, want.map(|(k, l)| (k.to_string(), l)));
    }

    #[test]
    fn malformed_expectations_are_errors_naming_the_line() {
        assert_eq!(
            expectations("f", "x\n// expected-error @+5 {{a}}").unwrap_err(),
            "f:2: error: '@+5' points outside the file"
        );
        assert!(expectations("f", "// expected-error oops").unwrap_err().contains("needs its message in {{...}}"));
        assert!(expectations("f", "// expected-error @soon {{a}}").unwrap_err().contains("'@soon'"));
    }

    #[test]
    fn notes_kinds_and_files_must_match() {
        let expected = expectations("f", "x\n// expected-note @above {{first defined}}\n").unwrap();
        let error = Diagnostic::error(Location::file("f", 1, 1), "redefined")
            .with_note(Location::file("f", 1, 3), "first defined here");
        // The error itself was not expected.
        assert_eq!(
            check("f", expected.clone(), std::slice::from_ref(&error)),
            ["f:1: error: unexpected error: redefined"]
        );
        let elsewhere = Diagnostic::error(Location::file("g", 1, 1), "first defined");
        let problems = check("f", expected, &[elsewhere]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("expected note \"first defined\" on line 1 was not produced"));
    }
}
