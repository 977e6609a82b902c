//! ONNX import: a `ModelProto` (decoded by prost from the official `onnx.proto`) becomes a module
//! with one `func.func @main` in the `smelt` dialect.
//!
//! - Weights are never copied: the model file and external-data files are memory-mapped and
//!   initializers become resources that window into the maps (`dense_resource<name>`).
//! - Ops follow the newest opset; older opsets' attribute forms (Clip, Squeeze/Unsqueeze, Reduce*,
//!   Split, Pad, Slice) become constant operands here.
//! - Every node keeps its name and index as its location: `loc("node_conv1"("model.onnx":7:1))`,
//!   where the "line" is the node's 1-based position in the graph.
//! - Every op type Smelt does not support is reported at once, each with its node names.

mod convert;
mod qoperator;
mod tensor;

pub use tensor::{element_type, onnx_code, pack, packed_bits, tensor_to_dense, RandomWeights};

/// An import failure: the model asks for something Smelt does not support (an operator, an
/// element type, a configuration), or the file is not a valid model.
#[derive(Debug)]
pub struct ImportError {
    pub unsupported: bool,
    pub diagnostic: Diagnostic,
}

impl ImportError {
    fn invalid(diagnostic: Diagnostic) -> Self {
        ImportError { unsupported: false, diagnostic }
    }

    fn unsupported(diagnostic: Diagnostic) -> Self {
        ImportError { unsupported: true, diagnostic }
    }
}

impl From<Diagnostic> for ImportError {
    fn from(diagnostic: Diagnostic) -> Self {
        ImportError::invalid(diagnostic)
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.diagnostic)
    }
}

use crate::attributes::{Attribute, DenseElements, DenseStorage};
use crate::builder::add_function;
use crate::diagnostics::Diagnostic;
use crate::dialect::names;
use crate::ir::{Module, OpSpec, ValueId};
use crate::location::Location;
use crate::resources::SharedBytes;
use crate::types::{Dim, TensorType, Type};
use bytes::Bytes;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The ONNX protobuf types, generated at build time.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// How to get weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Weights {
    /// From the model file and its external-data files; a missing file is an error.
    #[default]
    FromFiles,
    /// Seeded pseudo-random values of the right shapes (for graph-only files): floats uniform in
    /// [-0.05, 0.05) (variances positive), integers 0 or 1 so index tensors stay in range.
    Random { seed: u64 },
}

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Pinned shapes of graph inputs (`--shape input=1x3x224x224`), replacing symbolic dims.
    pub shapes: HashMap<String, Vec<u64>>,
    pub weights: Weights,
    /// Accept files ONNX Runtime refuses but whose meaning is clear (`--lenient`): a value
    /// produced twice (the last producer wins) and a `kernel_shape` that contradicts the
    /// weights (the weights win).
    pub lenient: bool,
}

/// The newest opset whose changes to supported operators the importer knows (ONNX 1.23).
pub const MAX_OPSET: i64 = 28;

/// Constants with at most this many elements are printed inline; larger ones are resources.
pub const INLINE_ELEMENT_LIMIT: u64 = 16;

impl SharedBytes for Bytes {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// The file's bytes, read into memory: a module refers to its weights for as long as it
/// lives, and a map of a file truncated meanwhile would kill the process (SIGBUS) on the next
/// read of a page past the new end. ONNX Runtime reads them too.
fn read_file(path: &Path) -> std::io::Result<Bytes> {
    Ok(Bytes::from(std::fs::read(path)?))
}

/// Imports the model at `path`.
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Module, ImportError> {
    let name = path.display().to_string();
    let bytes = read_file(path).map_err(|e| file_error(&name, &format!("cannot read: {e}")))?;
    import_bytes(bytes, &name, path.parent(), options)
}

/// Imports a serialized `ModelProto`; `base_dir` resolves external-data locations.
pub fn import_bytes(
    bytes: Bytes,
    file: &str,
    base_dir: Option<&Path>,
    options: &ImportOptions,
) -> Result<Module, ImportError> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| file_error(file, &format!("not a valid ONNX model: {e}")))?;
    let graph = model.graph.as_ref().ok_or_else(|| file_error(file, "the model has no graph"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
        .and_then(|o| o.version)
        .unwrap_or(1);
    if !(1..=MAX_OPSET).contains(&opset) {
        return Err(ImportError::unsupported(file_error(
            file,
            &format!("opset {opset} is not supported (Smelt imports opsets 1 to {MAX_OPSET})"),
        )));
    }
    let mut importer = Importer {
        file: file.into(),
        base_dir: base_dir.map(Path::to_path_buf).unwrap_or_default(),
        options,
        opset,
        module: Module::new(Location::file(file, 0, 0)),
        values: HashMap::new(),
        external: HashMap::new(),
        random: match options.weights {
            Weights::Random { seed } => Some(RandomWeights::new(seed)),
            Weights::FromFiles => None,
        },
    };
    let expanded = qoperator::expand(graph).map_err(|e| ImportError::invalid(file_error(file, &e)))?;
    let graph = expanded.as_ref().unwrap_or(graph);
    importer.check_supported(graph).map_err(ImportError::unsupported)?;
    importer.import_graph(graph)?;
    Ok(importer.module)
}

fn file_error(file: &str, message: &str) -> Diagnostic {
    Diagnostic::error(Location::name(file), message)
}

struct Importer<'o> {
    file: Arc<str>,
    base_dir: PathBuf,
    options: &'o ImportOptions,
    opset: i64,
    module: Module,
    values: HashMap<String, ValueId>,
    external: HashMap<String, Bytes>,
    random: Option<RandomWeights>,
}

impl Importer<'_> {
    /// `loc("node"("scope (Class)"("model.onnx":N:1)))`: the node's name, the PyTorch module it
    /// was exported from when the exporter recorded it, and its position in the graph.
    fn node_loc(&self, node: &proto::NodeProto, index: usize) -> Location {
        let name = node.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("{}_{index}", node.op_type()));
        let mut child = Location::FileLineCol { file: self.file.clone(), line: index as u32 + 1, col: 1 };
        let meta = |key: &str| node.metadata_props.iter().find(|p| p.key() == key).map(|p| list_items(p.value()));
        if let (Some(scopes), Some(classes)) =
            (meta("pkg.torch.onnx.name_scopes"), meta("pkg.torch.onnx.class_hierarchy"))
        {
            // The innermost module, skipping the trailing aten operator entries.
            let innermost = scopes.iter().zip(&classes).rev().find(|(_, class)| !class.starts_with("aten."));
            if let Some((scope, class)) = innermost.filter(|(scope, _)| !scope.is_empty()) {
                child = Location::Name { name: format!("{scope} ({class})").into(), child: Some(Box::new(child)) };
            }
        }
        Location::Name { name: name.into(), child: Some(Box::new(child)) }
    }

    /// Every op type the importer cannot convert, each with the nodes using it, in one error.
    fn check_supported(&self, graph: &proto::GraphProto) -> Result<(), Diagnostic> {
        let mut unsupported: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            let domain = node.domain.as_deref().unwrap_or("");
            if !(domain.is_empty() || domain == "ai.onnx") || !convert::is_supported(node.op_type()) {
                let key =
                    if domain.is_empty() { node.op_type().to_string() } else { format!("{domain}.{}", node.op_type()) };
                let name = node.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("#{}", i + 1));
                unsupported.entry(key).or_default().push(name);
            }
        }
        if unsupported.is_empty() {
            return Ok(());
        }
        let total: usize = unsupported.values().map(Vec::len).sum();
        let mut d = file_error(
            &self.file,
            &format!(
                "{total} node(s) use {} operator(s) Smelt does not support: {}",
                unsupported.len(),
                unsupported.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
        for (op, nodes) in unsupported {
            let shown: Vec<&str> = nodes.iter().take(8).map(String::as_str).collect();
            let more = if nodes.len() > 8 { format!(" and {} more", nodes.len() - 8) } else { String::new() };
            d = d.with_note(
                Location::Unknown,
                format!("unsupported operator '{op}' in node(s) {}{more}", shown.join(", ")),
            );
        }
        Err(d)
    }

    fn import_graph(&mut self, graph: &proto::GraphProto) -> Result<(), ImportError> {
        let initializer_names: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
        let mut input_types = Vec::new();
        let mut input_names = Vec::new();
        for input in graph.input.iter().filter(|i| !initializer_names.contains(i.name())) {
            input_types.push(self.value_info_type(input)?);
            input_names.push(input.name().to_string());
        }
        let mut pinned: Vec<&String> = self.options.shapes.keys().filter(|n| !input_names.contains(n)).collect();
        pinned.sort();
        if let Some(name) = pinned.first() {
            let message = format!("--shape names '{name}', which is not an input (inputs: {})", input_names.join(", "));
            return Err(file_error(&self.file, &message).into());
        }
        let (func, entry) =
            add_function(&mut self.module, "main", input_types, Vec::new(), Location::file(&self.file, 0, 0));
        let args = self.module.block(entry).args().to_vec();
        for (name, arg) in input_names.iter().zip(args) {
            self.values.insert(name.clone(), arg);
        }
        for init in &graph.initializer {
            let dense = self.initializer(init)?;
            let v = self.constant(entry, dense, Location::name(init.name()));
            self.values.insert(init.name().to_string(), v);
        }
        for (i, node) in graph.node.iter().enumerate() {
            let loc = self.node_loc(node, i);
            let results = convert::convert(self, entry, node, loc.clone()).map_err(|e| {
                let name = node.name.clone().unwrap_or_default();
                let (unsupported, e) = match e {
                    convert::ConvError::Unsupported(m) => (true, m),
                    convert::ConvError::Invalid(m) => (false, m),
                };
                let diagnostic = Diagnostic::error(loc.clone(), format!("'{}' node '{name}': {e}", node.op_type()));
                ImportError { unsupported, diagnostic }
            })?;
            for (name, v) in node.output.iter().zip(results) {
                if name.is_empty() {
                    continue;
                }
                // ONNX graphs are in SSA form: a second producer would silently replace the
                // first for every later reader (ONNX Runtime refuses such files too).
                if self.values.insert(name.clone(), v).is_some() && !self.options.lenient {
                    let node_name = node.name.clone().unwrap_or_default();
                    return Err(ImportError {
                        unsupported: false,
                        diagnostic: Diagnostic::error(
                            loc.clone(),
                            format!(
                                "'{}' node '{node_name}': output '{name}' is already defined (an input, an initializer or an earlier node's output)",
                                node.op_type()
                            ),
                        ),
                    });
                }
            }
        }
        let mut outputs = Vec::new();
        for out in &graph.output {
            let v = *self
                .values
                .get(out.name())
                .ok_or_else(|| file_error(&self.file, &format!("graph output '{}' is never produced", out.name())))?;
            outputs.push(v);
        }
        let result_types: Vec<Type> = outputs.iter().map(|v| self.module.value_type(*v).clone()).collect();
        // The graph's names, as onnx-mlir keeps them: errors about inputs and outputs name
        // them, and callers feed and fetch tensors by them.
        let names = |list: Vec<&str>| Attribute::Array(list.into_iter().map(|n| Attribute::String(n.into())).collect());
        let output_names = names(graph.output.iter().map(|o| o.name()).collect());
        // Symbolic dimensions' names (`N`, `seq`), in onnx-mlir's `dim_params` form ("0:N"),
        // for callers that show them; recorded only where a dimension has one.
        let inputs = graph.input.iter().filter(|i| !initializer_names.contains(i.name()));
        let pinned = |i: &proto::ValueInfoProto| self.options.shapes.contains_key(i.name());
        let input_params: Vec<String> = inputs.map(|i| if pinned(i) { String::new() } else { dim_params(i) }).collect();
        let output_params: Vec<String> = graph.output.iter().map(dim_params).collect();
        for (key, params) in [("input_dim_params", input_params), ("output_dim_params", output_params)] {
            if params.iter().any(|p| !p.is_empty()) {
                let value = names(params.iter().map(String::as_str).collect());
                self.module.op_mut(func).attributes.insert(key.into(), value);
            }
        }
        self.module
            .op_mut(func)
            .attributes
            .insert("input_names".into(), names(input_names.iter().map(String::as_str).collect()));
        self.module.op_mut(func).attributes.insert("output_names".into(), output_names);
        let ret =
            self.module.create_op(OpSpec::new(names::RETURN).operands(outputs).loc(Location::file(&self.file, 0, 0)));
        self.module.append_op(entry, ret);
        if let Some(Attribute::Type(Type::Function(ft))) = self.module.op(func).attr("function_type").cloned() {
            let mut ft = *ft;
            ft.results = result_types;
            self.module
                .op_mut(func)
                .attributes
                .insert("function_type".into(), Attribute::Type(Type::Function(Box::new(ft))));
        }
        Ok(())
    }

    fn value_info_type(&self, info: &proto::ValueInfoProto) -> Result<Type, ImportError> {
        let name = info.name();
        let Some(proto::type_proto::Value::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(ImportError::unsupported(file_error(
                &self.file,
                &format!("graph input '{name}' is not a tensor"),
            )));
        };
        let element = element_type(t.elem_type()).ok_or_else(|| {
            ImportError::unsupported(file_error(
                &self.file,
                &format!("graph input '{name}' has unsupported element type {}", tensor::type_name(t.elem_type())),
            ))
        })?;
        let mut shape = t.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(proto::tensor_shape_proto::dimension::Value::DimValue(v)) if v >= 0 => Dim::Known(v as u64),
                    _ => Dim::Dynamic,
                })
                .collect::<Vec<_>>()
        });
        if let Some(pinned) = self.options.shapes.get(name) {
            if let Some(s) = &shape {
                let conflict =
                    s.len() != pinned.len() || s.iter().zip(pinned).any(|(d, p)| matches!(d, Dim::Known(k) if k != p));
                if conflict {
                    let have = TensorType { shape: Some(s.clone()), element };
                    return Err(ImportError::invalid(file_error(
                        &self.file,
                        &format!("--shape {name}={} contradicts the model's {have}", join_dims(pinned)),
                    )));
                }
            }
            shape = Some(pinned.iter().map(|&d| Dim::Known(d)).collect());
        }
        Ok(Type::Tensor(TensorType { shape, element }))
    }

    /// An initializer's contents as a dense attribute (resource-backed when large).
    fn initializer(&mut self, t: &proto::TensorProto) -> Result<DenseElements, ImportError> {
        let name = t.name().to_string();
        if element_type(t.data_type()).is_none() {
            return Err(ImportError::unsupported(file_error(
                &self.file,
                &format!("initializer '{name}' has unsupported element type {}", tensor::type_name(t.data_type())),
            )));
        }
        let external = t.data_location() == proto::tensor_proto::DataLocation::External;
        if external && self.random.is_none() {
            let (location, offset, length) =
                external_fields(t).map_err(|e| file_error(&self.file, &format!("initializer '{name}': {e}")))?;
            let path = self.base_dir.join(&location);
            let bytes = match self.external.get(&location) {
                Some(b) => b.clone(),
                None => {
                    let b = read_file(&path).map_err(|e| {
                        file_error(&self.file, &format!("cannot read external weights file '{}' (initializer '{name}'): {e}; pass --weights=random to use random weights", path.display()))
                    })?;
                    self.external.insert(location.clone(), b.clone());
                    b
                }
            };
            let ty =
                tensor::tensor_type(t).map_err(|e| file_error(&self.file, &format!("initializer '{name}': {e}")))?;
            let want = ty.byte_size().unwrap_or(u64::MAX);
            let length = length.unwrap_or(want);
            if length != want || offset.checked_add(length).is_none_or(|end| end > bytes.len() as u64) {
                return Err(ImportError::invalid(file_error(
                    &self.file,
                    &format!("initializer '{name}': {length} bytes at offset {offset} of '{location}' ({} bytes) do not hold {ty}", bytes.len()),
                )));
            }
            let slice = bytes.slice(offset as usize..(offset + length) as usize);
            return Ok(self.store(name, ty, slice));
        }
        if external {
            let ty =
                tensor::tensor_type(t).map_err(|e| file_error(&self.file, &format!("initializer '{name}': {e}")))?;
            let blob = self.random.as_mut().unwrap().blob(&ty);
            if ty.num_elements().unwrap_or(u64::MAX) <= INLINE_ELEMENT_LIMIT {
                return Ok(DenseElements { ty, storage: DenseStorage::Inline(blob.bytes().to_vec().into()) });
            }
            let handle = self.module.resources.insert(&name, blob);
            return Ok(DenseElements { ty, storage: DenseStorage::Resource(handle) });
        }
        let (ty, data) =
            tensor_to_dense(t).map_err(|e| file_error(&self.file, &format!("initializer '{name}': {e}")))?;
        Ok(self.store(name, ty, data))
    }

    /// Small tensors inline, large ones as a resource windowing `data`.
    fn store(&mut self, name: String, ty: TensorType, data: Bytes) -> DenseElements {
        if ty.num_elements().unwrap_or(u64::MAX) <= INLINE_ELEMENT_LIMIT {
            return DenseElements { ty, storage: DenseStorage::Inline(data.to_vec().into()) };
        }
        let len = data.len();
        let blob = crate::resources::Blob::window(Arc::new(data), 0, len).expect("window covers the buffer");
        let handle = self.module.resources.insert(&name, blob);
        DenseElements { ty, storage: DenseStorage::Resource(handle) }
    }

    fn constant(&mut self, block: crate::ir::BlockId, value: DenseElements, loc: Location) -> ValueId {
        let ty = Type::Tensor(value.ty.clone());
        let op = self
            .module
            .create_op(OpSpec::new(names::CONSTANT).attr("value", Attribute::Dense(value)).results([ty]).loc(loc));
        self.module.append_op(block, op);
        self.module.op(op).result()
    }
}

fn external_fields(t: &proto::TensorProto) -> Result<(String, u64, Option<u64>), String> {
    let mut location = None;
    let mut offset = 0;
    let mut length = None;
    for e in &t.external_data {
        let value = e.value();
        match e.key() {
            "location" => location = Some(value.to_string()),
            "offset" => offset = value.parse().map_err(|_| format!("invalid external data offset '{value}'"))?,
            "length" => length = Some(value.parse().map_err(|_| format!("invalid external data length '{value}'"))?),
            _ => {}
        }
    }
    let location = location.ok_or("external data has no location")?;
    if Path::new(&location).is_absolute() || location.split(['/', '\\']).any(|p| p == "..") {
        return Err(format!("external data location '{location}' must be relative to the model's directory"));
    }
    Ok((location, offset, length))
}

/// The elements of a Python list repr like `['', 'encoder', 'encoder.layers']`.
fn list_items(repr: &str) -> Vec<String> {
    let inner = repr.trim().trim_start_matches('[').trim_end_matches(']');
    inner.split(", ").map(|item| item.trim().trim_matches('\'').trim_matches('"').to_string()).collect()
}

/// `"0:N,2:seq"`: the named symbolic dimensions of a graph input or output, by axis.
fn dim_params(info: &proto::ValueInfoProto) -> String {
    let Some(proto::type_proto::Value::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return String::new();
    };
    let dims = t.shape.as_ref().map_or(&[][..], |s| &s.dim[..]);
    let named = dims.iter().enumerate().filter_map(|(axis, d)| match &d.value {
        Some(proto::tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => Some(format!("{axis}:{p}")),
        _ => None,
    });
    named.collect::<Vec<_>>().join(",")
}

pub fn join_dims(dims: &[u64]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}
