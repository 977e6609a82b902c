//! A builder that creates operations at an insertion point, inferring result types from the
//! op registry when asked to.

use crate::attributes::Attribute;
use crate::dialect::names;
use crate::dialect::OpView;
use crate::ir::{BlockId, Module, OpId, OpSpec, ValueId};
use crate::location::Location;
use crate::types::{FunctionType, Type};

/// Where new operations go.
#[derive(Clone, Copy, Debug)]
pub enum InsertPoint {
    End(BlockId),
    Before(OpId),
}

pub struct Builder<'m> {
    pub module: &'m mut Module,
    pub point: InsertPoint,
    pub loc: Location,
}

impl<'m> Builder<'m> {
    pub fn at_end(module: &'m mut Module, block: BlockId) -> Self {
        Builder { module, point: InsertPoint::End(block), loc: Location::Unknown }
    }

    pub fn before(module: &'m mut Module, op: OpId) -> Self {
        Builder { module, point: InsertPoint::Before(op), loc: Location::Unknown }
    }

    /// Creates `spec` at the insertion point (with the builder's location if it has none).
    pub fn insert(&mut self, mut spec: OpSpec) -> OpId {
        if spec.loc == Location::Unknown {
            spec.loc = self.loc.clone();
        }
        let op = self.module.create_op(spec);
        match self.point {
            InsertPoint::End(block) => self.module.append_op(block, op),
            InsertPoint::Before(anchor) => self.module.insert_op_before(anchor, op),
        }
        op
    }

    /// Creates an op whose result types come from its registered inference function.
    /// The op is created with placeholder types, inferred, and retyped; on an inference error the
    /// op is erased and the error returned.
    pub fn build(&mut self, name: &str, operands: &[ValueId], attrs: &[(&str, Attribute)]) -> Result<OpId, String> {
        self.build_n(name, operands, attrs, 1)
    }

    /// Like [`Builder::build`] for ops with `results` results (split, dropout).
    pub fn build_n(
        &mut self,
        name: &str,
        operands: &[ValueId],
        attrs: &[(&str, Attribute)],
        results: usize,
    ) -> Result<OpId, String> {
        let mut spec = OpSpec::new(name).operands(operands.iter().copied());
        if spec.def.results.is_empty() {
            spec.result_types.clear();
        } else {
            spec.result_types = vec![Type::None; results];
        }
        for (k, v) in attrs {
            spec = spec.attr(k, v.clone());
        }
        let op = self.insert(spec);
        let inferred = match spec_infer(self.module, op) {
            Ok(t) => t,
            Err(e) => {
                self.module.erase_op(op);
                return Err(e);
            }
        };
        let results = self.module.op(op).results().to_vec();
        if inferred.len() != results.len() {
            self.module.erase_op(op);
            return Err(format!("`{name}` infers {} results, built with {}", inferred.len(), results.len()));
        }
        for (r, t) in results.iter().zip(inferred) {
            self.module.set_value_type(*r, t);
        }
        Ok(op)
    }

    /// Shorthand for a single-result op's value.
    pub fn value(&mut self, name: &str, operands: &[ValueId], attrs: &[(&str, Attribute)]) -> Result<ValueId, String> {
        let op = self.build(name, operands, attrs)?;
        Ok(self.module.op(op).result())
    }
}

fn spec_infer(module: &Module, op: OpId) -> Result<Vec<Type>, String> {
    let view = OpView::new(module, op);
    match view.def().infer {
        Some(infer) => infer(&view),
        None => Err(format!("`{}` has no type inference", view.def().name)),
    }
}

/// Adds `func.func @name(inputs) -> results` to the module; returns the function and its entry
/// block (empty: the caller appends the body and a `func.return`).
pub fn add_function(
    module: &mut Module,
    name: &str,
    inputs: Vec<Type>,
    results: Vec<Type>,
    loc: Location,
) -> (OpId, BlockId) {
    let ft = FunctionType { inputs: inputs.clone(), results };
    let func = module.create_op(
        OpSpec::new(names::FUNC)
            .attr("sym_name", Attribute::String(name.into()))
            .attr("function_type", Attribute::Type(Type::Function(Box::new(ft))))
            .regions(1)
            .loc(loc),
    );
    let body = module.body();
    module.append_op(body, func);
    let region = module.op(func).regions()[0];
    let entry = module.add_block(region, &inputs);
    (func, entry)
}
