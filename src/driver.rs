//! Shared driver plumbing: reading inputs, rendering diagnostics, building pipelines.

use smelt_compiler::diagnostics::{Diagnostic, SourceMap};
use smelt_compiler::onnx::{ImportOptions, Weights};
use smelt_compiler::parser::parse_module;
use smelt_compiler::verifier::verify;
use smelt_compiler::Module;
use std::io::{Read, Write};

/// Where a model comes from: an ONNX file (with pinned input shapes and a weights source) or
/// MLIR text.
#[derive(Clone, Debug, Default)]
pub struct ModelSource {
    /// `.onnx`, or `.mlir` text (`-` for stdin).
    pub path: String,
    /// ONNX: `NAME=DIMS` pins of symbolic input dimensions.
    pub shapes: Vec<String>,
    /// ONNX: `file`, `random` or `random:SEED`.
    pub weights: String,
    /// ONNX: accept files ONNX Runtime refuses but whose meaning is clear.
    pub lenient: bool,
}

impl ModelSource {
    /// Loads the model; returns it as imported and after the cleanup pipeline (unfused).
    pub fn load(&self) -> Result<(Module, Module), Failure> {
        let mut module = if is_onnx(&self.path) {
            let options = ImportOptions {
                shapes: parse_shapes(&self.shapes)?,
                weights: parse_weights(&self.weights)?,
                lenient: self.lenient,
            };
            load_onnx(&self.path, &options)?
        } else {
            let text = read_text(&self.path)?;
            let mut sources = SourceMap::default();
            sources.add(&self.path, &text);
            load_mlir(&text, &self.path, &sources)?
        };
        let imported = module.clone();
        smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE)
            .map_err(|ds| Failure(render(&SourceMap::default(), &ds)))?;
        Ok((imported, module))
    }

    /// [`ModelSource::load`], with the dynamic dimensions of the inputs bound to 1 (a note on
    /// stderr names them): what commands that need static shapes and have no input tensors
    /// analyse and run. `--shape` pins them otherwise.
    pub fn load_static(&self) -> Result<(Module, Module), Failure> {
        let (imported, module) = self.load()?;
        let (module, bound) = smelt_passes::specialize::bind_dynamic_inputs(&module, 1)
            .map_err(|e| Failure(format!("{}: error: {e}", self.path)))?;
        if !bound.is_empty() {
            let list: Vec<String> = bound.iter().map(|(name, axis)| format!("'{name}' dimension {axis}")).collect();
            eprintln!(
                "note: {}: dynamic {} taken as 1 (pin shapes with --shape NAME=DIMS)",
                self.path,
                list.join(", ")
            );
        }
        Ok((imported, module))
    }
}

/// A failure already rendered for the user.
#[derive(Debug)]
pub struct Failure(pub String);

/// An error of Smelt's own (no file to name) as the user reads it.
pub fn fail(e: impl std::fmt::Display) -> Failure {
    Failure(format!("error: {e}"))
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

/// Writes `text` to the file `path`, or to standard output for `-`, flushed: every command's
/// output goes through here. An error names where the output was going (a full disk is not
/// a success); a closed pipe ends the process quietly, as it does other Unix tools.
pub fn write_output(path: &str, text: &str) -> Result<(), Failure> {
    let result = if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    } else {
        std::fs::write(path, text)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if path == "-" && e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let name = if path == "-" { "standard output" } else { path };
            Err(Failure(format!("{name}: error: cannot write: {e}")))
        }
    }
}

/// Reads a file (or stdin for `-`) as text, naming the file in any error.
pub fn read_text(path: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map(|_| ())
    };
    result.map_err(|e| Failure(format!("{}: error: cannot read: {e}", display_name(path))))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure(format!(
            "{}: error: not UTF-8 text (byte {}): expected MLIR syntax",
            display_name(path),
            e.utf8_error().valid_up_to()
        ))
    })
}

pub fn display_name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

pub fn render(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| sources.render(d)).collect()
}

/// Parses and verifies MLIR text; errors come back rendered against `sources`.
pub fn load_mlir(text: &str, name: &str, sources: &SourceMap) -> Result<Module, Failure> {
    let module = parse_module(text, name).map_err(|d| Failure(render(sources, &[d])))?;
    verify(&module).map_err(|ds| Failure(render(sources, &ds)))?;
    Ok(module)
}

/// Splits at lines `// -----` (MLIR's `--split-input-file`). Each chunk is padded with the
/// newlines that precede it so diagnostics keep the original line numbers.
pub fn split_input(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut chunk_start = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_end() == "// -----" {
            chunks.push("\n".repeat(chunk_start) + &current);
            current.clear();
            chunk_start = i + 1;
        } else {
            current.push_str(line);
        }
    }
    chunks.push("\n".repeat(chunk_start) + &current);
    chunks
}

/// Whether a path names an ONNX model (by extension).
pub fn is_onnx(path: &str) -> bool {
    path.ends_with(".onnx")
}

/// Parses `--shape name=1x3x224x224` values.
pub fn parse_shapes(specs: &[String]) -> Result<std::collections::HashMap<String, Vec<u64>>, Failure> {
    let mut shapes = std::collections::HashMap::new();
    for spec in specs {
        let (name, dims) = spec.rsplit_once('=').ok_or_else(|| {
            Failure(format!("error: --shape expects NAME=DIMS (like input=1x3x224x224), got '{spec}'"))
        })?;
        let dims: Vec<u64> = dims
            .split('x')
            .map(|d| d.parse().map_err(|_| Failure(format!("error: --shape {spec}: '{d}' is not a dimension"))))
            .collect::<Result<_, _>>()?;
        shapes.insert(name.to_string(), dims);
    }
    Ok(shapes)
}

/// Parses `--weights=file|random|random:SEED`.
pub fn parse_weights(spec: &str) -> Result<Weights, Failure> {
    match spec {
        "file" => Ok(Weights::FromFiles),
        "random" => Ok(Weights::Random { seed: 0 }),
        _ => match spec.strip_prefix("random:").map(str::parse) {
            Some(Ok(seed)) => Ok(Weights::Random { seed }),
            _ => Err(Failure(format!("error: --weights expects 'file', 'random' or 'random:SEED', got '{spec}'"))),
        },
    }
}

/// Imports an ONNX model and verifies the result.
pub fn load_onnx(path: &str, options: &ImportOptions) -> Result<Module, Failure> {
    let sources = SourceMap::default();
    let module = smelt_compiler::onnx::import_file(std::path::Path::new(path), options)
        .map_err(|e| Failure(render(&sources, &[e.diagnostic])))?;
    verify(&module).map_err(|ds| Failure(render(&sources, &ds)))?;
    Ok(module)
}
