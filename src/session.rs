//! [`Session`]: load a model once, run it many times on named, typed tensors, as ONNX Runtime's
//! `InferenceSession` does.

#![deny(missing_docs)]

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use smelt_compiler::onnx::{ImportOptions, Weights};
use smelt_compiler::{ElementType, Module, TensorType};
use smelt_passes::cost::CostModel;
use smelt_runtime::exec::{Executable, RawTensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a session executes the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The kernels fusion chose under the session's target and cost profile.
    #[default]
    Fused,
    /// One kernel per op, every intermediate materialized.
    Unfused,
    /// The reference interpreter (f64 throughout): the oracle, slow.
    Reference,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "fused" => Ok(Mode::Fused),
            "unfused" => Ok(Mode::Unfused),
            "reference" => Ok(Mode::Reference),
            _ => Err(Error::Other(format!("mode '{s}': expected fused, unfused or reference"))),
        }
    }
}

/// Where an ONNX model's weights come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightSource {
    /// The model file (or bytes) and its external-data files beside it.
    #[default]
    File,
    /// Seeded pseudo-random values of the declared shapes, for graph-only files.
    Random {
        /// The generator's seed: one seed, one set of weights.
        seed: u64,
    },
}

/// What a [`Session`] is built with; `Default` is what `smelt run` does without options.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Worker threads (default: every core this process may use).
    pub threads: Option<usize>,
    /// Fused, unfused or the reference interpreter.
    pub mode: Mode,
    /// Where an ONNX model's weights come from.
    pub weights: WeightSource,
    /// The target whose cost model prices fusion: `host` or a shipped name, or a `.toml` path.
    pub target: String,
    /// A calibration profile (`smelt calibrate`, `smelt tune`) whose measurements price fusion.
    pub cost_profile: Option<PathBuf>,
    /// Pinned extents of symbolic input dimensions, by input name.
    pub shapes: HashMap<String, Vec<u64>>,
    /// Fusion may substitute ops (merge parallel products); `false` is `--no-algebra`.
    pub algebra: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            threads: None,
            mode: Mode::Fused,
            weights: WeightSource::File,
            target: "host".to_string(),
            cost_profile: None,
            shapes: HashMap::new(),
            algebra: true,
        }
    }
}

/// A model input or output as callers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// ONNX's name for it (`#i` where the model records none).
    pub name: String,
    /// Extents; `None` for a symbolic (dynamic) dimension.
    pub shape: Vec<Option<u64>>,
    /// The name the model gives each symbolic dimension (ONNX's `dim_param`, such as `N`);
    /// `None` for static and unnamed ones.
    pub dim_names: Vec<Option<String>>,
    /// The element type.
    pub element: ElementType,
}

/// A loaded model, compiled once per distinct input shape and run on named tensors.
///
/// ```
/// use smelt::{Session, Tensor};
/// // A two-op model in Smelt's dialect; `.onnx` files load the same way.
/// let path = std::env::temp_dir().join(format!("smelt-doc-{}.mlir", std::process::id()));
/// std::fs::write(&path, r#"
/// func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
///   %r = "smelt.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
///   %y = "smelt.add"(%r, %r) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
///   return %y : tensor<2x3xf32>
/// }"#)?;
/// let mut session = Session::new(&path)?;
/// assert_eq!(session.inputs()[0].shape, vec![Some(2), Some(3)]);
/// let x = Tensor::from_vec(vec![2, 3], vec![-1.0f32, 2.0, -3.0, 4.0, 0.5, -0.5])?;
/// let outputs = session.run(&[("#0", &x)])?;
/// assert_eq!(outputs[0].1.as_slice::<f32>(), Some(&[0.0f32, 4.0, 0.0, 8.0, 1.0, 0.0][..]));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    name: String,
    /// The model after cleanup: what every compile starts from.
    module: Module,
    options: SessionOptions,
    inputs: Vec<ValueInfo>,
    /// The inputs' declared types, which every feed is checked against.
    input_types: Vec<TensorType>,
    outputs: Vec<ValueInfo>,
    cost_model: Arc<dyn CostModel>,
    /// Executables by [`Session::compile_key`]: a symbolic model compiles once per shape.
    compiled: HashMap<Vec<u8>, Executable>,
    /// Whether every shape is static, so one executable serves every run.
    is_static: bool,
}

impl Session {
    /// Loads a model (`.onnx`, or `.mlir` text) with default options.
    pub fn new(path: impl AsRef<Path>) -> Result<Session> {
        Session::with_options(path, SessionOptions::default())
    }

    /// Loads a model with `options`.
    pub fn with_options(path: impl AsRef<Path>, options: SessionOptions) -> Result<Session> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let module = if crate::driver::is_onnx(&name) {
            crate::driver::load_onnx(&name, &import_options(&options))?
        } else {
            let text = crate::driver::read_text(&name)?;
            let mut sources = smelt_compiler::diagnostics::SourceMap::default();
            sources.add(&name, &text);
            crate::driver::load_mlir(&text, &name, &sources)?
        };
        Session::from_module(name, module, options)
    }

    /// Loads a serialized ONNX model held in memory (weights inside it, or random); `name`
    /// is what errors call it.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>, name: &str, options: SessionOptions) -> Result<Session> {
        let bytes = bytes::Bytes::from(bytes.into());
        let module = smelt_compiler::onnx::import_bytes(bytes, name, None, &import_options(&options))
            .map_err(|e| Error::Load(smelt_compiler::diagnostics::SourceMap::default().render(&e.diagnostic)))?;
        smelt_compiler::verifier::verify(&module)
            .map_err(|ds| Error::Load(crate::driver::render(&Default::default(), &ds)))?;
        Session::from_module(name.to_string(), module, options)
    }

    fn from_module(name: String, mut module: Module, options: SessionOptions) -> Result<Session> {
        smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE)
            .map_err(|ds| Error::Load(crate::driver::render(&Default::default(), &ds)))?;
        let func = smelt_compiler::signature::main_function(&module).map_err(Error::Load)?;
        let entry = module.body_of(func);
        let types = |values: Vec<smelt_compiler::ValueId>,
                     names: Vec<String>,
                     params: Vec<Vec<(usize, String)>>|
         -> Vec<ValueInfo> {
            values
                .into_iter()
                .zip(names)
                .zip(params)
                .map(|((v, name), params)| {
                    let t = module.value_type(v).as_tensor().cloned();
                    let (shape, element) = t.map_or((Vec::new(), ElementType::F32), |t| {
                        let dims = t.shape.unwrap_or_default();
                        (dims.iter().map(|d| d.known()).collect::<Vec<_>>(), t.element)
                    });
                    let dim_names = (0..shape.len())
                        .map(|axis| {
                            let named = params.iter().find(|(a, _)| *a == axis).map(|(_, n)| n.clone());
                            named.filter(|_| shape[axis].is_none())
                        })
                        .collect();
                    ValueInfo { name, shape, dim_names, element }
                })
                .collect()
        };
        let arguments = module.block(entry).args().to_vec();
        let input_types = arguments
            .iter()
            .map(|&a| {
                module
                    .value_type(a)
                    .as_tensor()
                    .cloned()
                    .ok_or_else(|| Error::Load(format!("{name}: @main takes a non-tensor input")))
            })
            .collect::<Result<Vec<_>>>()?;
        let results = module.block_terminator(entry).map(|t| module.op(t).operands().to_vec()).unwrap_or_default();
        use smelt_compiler::signature::{input_dim_params, input_names, output_dim_params, output_names};
        let inputs = types(arguments, input_names(&module, func), input_dim_params(&module, func));
        let outputs = types(results, output_names(&module, func), output_dim_params(&module, func));
        let threads = smelt_runtime::workers::set_threads(options.threads.unwrap_or(usize::MAX));
        let profile = options.cost_profile.as_ref().map(|p| p.display().to_string());
        let target = smelt_hardware::target::Target::load(&options.target)
            .map_err(|e| Error::Other(e.to_string()))?
            .on_threads(threads);
        if let Some(path) = &options.cost_profile {
            crate::measure::adopt_kernel_variants(path).map_err(|e| Error::Other(e.to_string()))?;
        }
        let cost_model =
            smelt_passes::cost::model(target, profile.as_deref()).map_err(|e| Error::Other(e.to_string()))?;
        let is_static = smelt_passes::specialize::all_static(&module);
        Ok(Session {
            name,
            module,
            options,
            inputs,
            input_types,
            outputs,
            cost_model,
            compiled: HashMap::new(),
            is_static,
        })
    }

    /// The model's inputs, in order.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    /// The model's outputs, in order.
    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    /// What errors call the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the model on `feed` (every input, by name) and returns every output with its name,
    /// in the model's order. The first run of each input shape compiles.
    pub fn run(&mut self, feed: &[(&str, &Tensor)]) -> Result<Vec<(String, Tensor)>> {
        let ordered = self.order(feed)?;
        smelt_runtime::workers::set_threads(self.options.threads.unwrap_or(usize::MAX));
        if self.options.mode == Mode::Reference {
            let literals: Vec<_> = ordered.iter().map(|t| t.to_literal()).collect();
            let (module, _) = smelt_passes::specialize::specialize_to_inputs(&self.module, &literals)
                .map_err(|reason| Error::Other(format!("{}: {reason}", self.name)))?;
            let outputs = smelt_runtime::reference::run(&module, &literals).map_err(Error::Other)?;
            return self.named(outputs.iter().map(Tensor::from_literal).collect::<Result<_>>()?);
        }
        let key = self.compile_key(&ordered);
        if !self.compiled.contains_key(&key) {
            let exe = self.compile(&ordered)?;
            self.compiled.insert(key.clone(), exe);
        }
        let exe = self.compiled.get_mut(&key).expect("compiled above");
        let bytes: Vec<Vec<u8>> = ordered.iter().map(|t| t.to_le_bytes()).collect();
        let raw: Vec<RawTensor> = ordered
            .iter()
            .zip(&bytes)
            .map(|(t, b)| RawTensor { element: t.element(), shape: t.shape(), bytes: b })
            .collect();
        let encoded = exe.encode_raw(&raw)?;
        exe.run_encoded(&encoded)?;
        let outputs = exe
            .output_types()
            .iter()
            .enumerate()
            .map(|(i, t)| Tensor::from_le_bytes(t.element, t.static_shape().unwrap_or_default(), &exe.output_bytes(i)))
            .collect::<Result<Vec<_>>>()?;
        self.named(outputs)
    }

    /// The feed in input order; every input given once, nothing else.
    fn order<'a>(&self, feed: &[(&str, &'a Tensor)]) -> Result<Vec<&'a Tensor>> {
        for (name, _) in feed {
            if !self.inputs.iter().any(|i| i.name == *name) {
                let known: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::Input {
                    name: name.to_string(),
                    reason: format!("the model has no such input (its inputs: {})", known.join(", ")),
                });
            }
        }
        self.inputs
            .iter()
            .zip(&self.input_types)
            .map(|(info, ty)| {
                let mut given = feed.iter().filter(|(n, _)| *n == info.name);
                match (given.next(), given.next()) {
                    (Some((_, t)), None) => {
                        smelt_compiler::signature::check_input(&info.name, ty, t.element(), t.shape())
                            .map_err(|reason| Error::Input { name: info.name.clone(), reason })?;
                        Ok(*t)
                    }
                    (None, _) => {
                        Err(Error::Input { name: info.name.clone(), reason: "not given (every input is)".into() })
                    }
                    (Some(_), Some(_)) => Err(Error::Input { name: info.name.clone(), reason: "given twice".into() }),
                }
            })
            .collect()
    }

    /// What decides whether an executable can be reused: the input shapes, and for a model
    /// with dynamic shapes the values specialization bakes in (integer inputs and small float
    /// ones, as [`smelt_passes::specialize::specialize_to_inputs`] does).
    fn compile_key(&self, ordered: &[&Tensor]) -> Vec<u8> {
        let mut key = Vec::new();
        for t in ordered {
            key.extend_from_slice(&(t.shape().len() as u64).to_le_bytes());
            t.shape().iter().for_each(|d| key.extend_from_slice(&d.to_le_bytes()));
            if !self.is_static && (t.element().is_integer() || t.data().len() <= 16) {
                key.extend_from_slice(&t.to_le_bytes());
            }
        }
        key
    }

    fn compile(&self, ordered: &[&Tensor]) -> Result<Executable> {
        let module = if self.is_static {
            self.module.clone()
        } else {
            let literals: Vec<_> = ordered.iter().map(|t| t.to_literal()).collect();
            smelt_passes::specialize::specialize_to_inputs(&self.module, &literals)
                .map_err(|reason| Error::Other(format!("{}: {reason}", self.name)))?
                .0
        };
        let module = match self.options.mode {
            Mode::Fused => {
                let mut m = module;
                smelt_passes::run_one(
                    &mut m,
                    &mut smelt_passes::fuse::Fuse::new(self.cost_model.clone()).algebra(self.options.algebra),
                )
                .map_err(|ds| Error::Other(crate::driver::render(&Default::default(), &ds)))?;
                m
            }
            _ => module,
        };
        Ok(Executable::compile(module)?)
    }

    fn named(&self, outputs: Vec<Tensor>) -> Result<Vec<(String, Tensor)>> {
        Ok(self.outputs.iter().map(|o| o.name.clone()).zip(outputs).collect())
    }
}

fn import_options(options: &SessionOptions) -> ImportOptions {
    ImportOptions {
        shapes: options.shapes.clone(),
        weights: match options.weights {
            WeightSource::File => Weights::FromFiles,
            WeightSource::Random { seed } => Weights::Random { seed },
        },
        lenient: false,
    }
}

#[cfg(test)]
mod tests {
    /// A session may move to another thread (Python releases the GIL around a run).
    #[test]
    fn sessions_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Session>();
    }
}
