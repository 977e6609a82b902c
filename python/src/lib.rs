//! `smelt._native`: the Rust side of the Python package. Tensors cross as (element type name,
//! shape, little-endian bytes); `smelt/__init__.py` turns them into numpy arrays, so this
//! module needs nothing but the stable ABI.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use smelt::{ElementType, Error, Mode, Session, SessionOptions, Tensor, WeightSource};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

create_exception!(_native, SmeltError, PyException, "An error Smelt reports: the file, op and reason.");
create_exception!(_native, InputError, SmeltError, "An input that does not fit the model.");

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Input { .. } => InputError::new_err(e.to_string()),
        other => SmeltError::new_err(other.to_string()),
    }
}

/// (name, shape with `None` for symbolic dimensions, each symbolic dimension's name where the
/// model gives one, element type name).
type Info = (String, Vec<Option<u64>>, Vec<Option<String>>, &'static str);

/// A tensor as it crosses: element type name, shape, bytes.
type Wire<'py> = (String, Vec<u64>, Bound<'py, PyBytes>);

/// The keyword options of `smelt.Session` (and of the analyses), as a dict the Python layer
/// fills in full.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Options {
    threads: Option<usize>,
    mode: String,
    weights: String,
    target: String,
    cost_profile: Option<PathBuf>,
    shapes: Option<HashMap<String, Vec<u64>>>,
}

impl Options {
    fn session_options(self) -> PyResult<SessionOptions> {
        let weights = match self.weights.as_str() {
            "file" => WeightSource::File,
            "random" => WeightSource::Random { seed: 0 },
            other => match other.strip_prefix("random:").map(str::parse) {
                Some(Ok(seed)) => WeightSource::Random { seed },
                _ => {
                    return Err(SmeltError::new_err(format!(
                        "weights '{other}': expected 'file', 'random' or 'random:SEED'"
                    )))
                }
            },
        };
        Ok(SessionOptions {
            threads: self.threads,
            mode: self.mode.parse::<Mode>().map_err(to_py)?,
            weights,
            target: self.target,
            cost_profile: self.cost_profile,
            shapes: self.shapes.unwrap_or_default(),
            ..SessionOptions::default()
        })
    }
}

#[pyclass(module = "smelt._native")]
struct NativeSession {
    session: Mutex<Session>,
}

#[pymethods]
impl NativeSession {
    #[new]
    fn new(py: Python<'_>, model: &Bound<'_, PyAny>, options: Options) -> PyResult<Self> {
        let options = options.session_options()?;
        let session = if let Ok(bytes) = model.downcast::<PyBytes>() {
            let bytes = bytes.as_bytes().to_vec();
            py.allow_threads(|| Session::from_bytes(bytes, "<bytes>", options))
        } else {
            let path: PathBuf = model.extract()?;
            py.allow_threads(|| Session::with_options(path, options))
        }
        .map_err(to_py)?;
        Ok(NativeSession { session: Mutex::new(session) })
    }

    fn inputs(&self) -> Vec<Info> {
        infos(self.session.lock().expect("not poisoned").inputs())
    }

    fn outputs(&self) -> Vec<Info> {
        infos(self.session.lock().expect("not poisoned").outputs())
    }

    /// Runs on `feed` ((name, element, shape, bytes) each) with the GIL released; returns
    /// every output as (name, element, shape, bytes).
    fn run<'py>(
        &self,
        py: Python<'py>,
        feed: Vec<(String, String, Vec<u64>, Bound<'py, PyBytes>)>,
    ) -> PyResult<Vec<(String, Wire<'py>)>> {
        let tensors = feed
            .iter()
            .map(|(name, element, shape, bytes)| {
                let element = ElementType::from_name(element)
                    .ok_or_else(|| InputError::new_err(format!("input '{name}': unknown element type '{element}'")))?;
                Tensor::from_le_bytes(element, shape.clone(), bytes.as_bytes())
                    .map_err(|e| InputError::new_err(format!("input '{name}': {e}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let named: Vec<(&str, &Tensor)> = feed.iter().map(|f| f.0.as_str()).zip(&tensors).collect();
        let outputs = py.allow_threads(|| self.session.lock().expect("not poisoned").run(&named)).map_err(to_py)?;
        Ok(outputs
            .into_iter()
            .map(|(name, t)| {
                let bytes = PyBytes::new(py, &t.to_le_bytes());
                (name, (t.element().name().to_string(), t.shape().to_vec(), bytes))
            })
            .collect())
    }
}

fn infos(values: &[smelt::ValueInfo]) -> Vec<Info> {
    values.iter().map(|v| (v.name.clone(), v.shape.clone(), v.dim_names.clone(), v.element.name())).collect()
}

fn json(v: smelt::Result<serde_json::Value>) -> PyResult<String> {
    v.map(|v| v.to_string()).map_err(to_py)
}

/// The object `smelt report --json` prints, as JSON text.
#[pyfunction]
fn report(py: Python<'_>, path: PathBuf, options: Options) -> PyResult<String> {
    let options = options.session_options()?;
    py.allow_threads(|| json(smelt::report(path, &options)))
}

/// The object `smelt plan --json` prints for `target`, as JSON text.
#[pyfunction]
fn plan(py: Python<'_>, path: PathBuf, target: String, options: Options) -> PyResult<String> {
    let options = options.session_options()?;
    py.allow_threads(|| json(smelt::plan(path, &target, &options)))
}

/// The object `smelt tune --json` prints, as JSON text.
#[pyfunction]
fn tune(py: Python<'_>, path: PathBuf, profile: PathBuf, max_rounds: usize, options: Options) -> PyResult<String> {
    let options = options.session_options()?;
    py.allow_threads(|| json(smelt::tune(path, profile, &options, max_rounds)))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSession>()?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(tune, m)?)?;
    m.add("SmeltError", m.py().get_type::<SmeltError>())?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    Ok(())
}
