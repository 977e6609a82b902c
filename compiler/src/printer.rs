//! Prints a module in MLIR syntax: `module`, `func.func` and `return` in MLIR's custom forms,
//! every other op in the generic form (`%0 = "smelt.relu"(%arg0) : (T) -> T`).
//!
//! Values are numbered per function (`%argN` for block arguments, `%N` for results, `%N:K` for
//! multi-result ops and `%N#i` for their uses), continuing through nested kernel bodies, exactly
//! as MLIR names them, so the output parses in `mlir-opt`. The output of
//! `print(parse(text))` equals `text` for everything this printer emits.

use crate::attributes::{write_dict, write_symbol_name, Attribute};
use crate::dialect::names;
use crate::ir::{BlockId, Module, OpId, RegionId, ValueId};
use crate::types::Type;
use std::collections::HashMap;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, Default)]
pub struct PrintOptions {
    /// Print `loc(...)` after every operation (MLIR's `--mlir-print-debuginfo`).
    pub debug_info: bool,
}

pub fn print_module(m: &Module, options: PrintOptions) -> String {
    let mut p =
        Printer { m, options, out: String::new(), names: HashMap::new(), next_value: 0, next_arg: 0, next_block: 0 };
    p.print_op(m.root(), 0);
    p.out
}

/// One operation (with its regions) in generic form, values named locally: for diagnostics and
/// debugging, not for round trips.
pub fn print_op(m: &Module, op: OpId) -> String {
    let mut p = Printer {
        m,
        options: PrintOptions::default(),
        out: String::new(),
        names: HashMap::new(),
        next_value: 0,
        next_arg: 0,
        next_block: 0,
    };
    p.print_op(op, 0);
    p.out.trim_end().to_string()
}

struct Printer<'a> {
    m: &'a Module,
    options: PrintOptions,
    out: String,
    names: HashMap<ValueId, String>,
    next_value: usize,
    next_arg: usize,
    next_block: usize,
}

impl Printer<'_> {
    fn name(&self, v: ValueId) -> &str {
        self.names.get(&v).map_or("%<<UNKNOWN>>", String::as_str)
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn name_results(&mut self, op: OpId) {
        let results = self.m.op(op).results();
        let n = self.next_value;
        self.next_value += 1;
        match results {
            [] => self.next_value -= 1,
            [r] => {
                self.names.insert(*r, format!("%{n}"));
            }
            many => {
                for (i, r) in many.iter().enumerate() {
                    self.names.insert(*r, format!("%{n}#{i}"));
                }
            }
        }
    }

    fn print_loc(&mut self, op: OpId) {
        if self.options.debug_info {
            let _ = write!(self.out, " {}", self.m.op(op).loc);
        }
    }

    fn print_op(&mut self, op: OpId, depth: usize) {
        match self.m.op(op).name() {
            names::MODULE => self.print_module_op(op, depth),
            names::FUNC => self.print_func(op, depth),
            names::RETURN => self.print_return(op, depth),
            _ => self.print_generic(op, depth),
        }
    }

    fn print_module_op(&mut self, op: OpId, depth: usize) {
        let o = self.m.op(op);
        self.indent(depth);
        self.out.push_str("module");
        if let Some(Attribute::Symbol(name)) = o.attr("sym_name") {
            self.out.push_str(" @");
            let _ = write_symbol_name(&mut self.out, name);
        }
        let rest: Vec<_> = o.attributes.iter().filter(|(k, _)| *k != "sym_name").collect();
        if !rest.is_empty() {
            self.out.push_str(" attributes ");
            self.write_attr_dict(rest.into_iter());
        }
        self.out.push_str(" {\n");
        let (saved_v, saved_a) = (self.next_value, self.next_arg);
        let body = self.m.body_of(op);
        for inner in self.m.block_ops(body) {
            self.print_op(inner, depth + 1);
        }
        (self.next_value, self.next_arg) = (saved_v, saved_a);
        self.indent(depth);
        self.out.push('}');
        self.print_loc(op);
        self.out.push('\n');
    }

    fn print_func(&mut self, op: OpId, depth: usize) {
        let o = self.m.op(op);
        let (Some(Attribute::String(name)), Some(Attribute::Type(Type::Function(ft)))) =
            (o.attr("sym_name"), o.attr("function_type"))
        else {
            return self.print_generic(op, depth);
        };
        let region = o.regions()[0];
        let blocks = self.m.region(region).blocks();
        if blocks.len() != 1 || self.m.block(blocks[0]).args().len() != ft.inputs.len() {
            return self.print_generic(op, depth);
        }
        // Functions are isolated: numbering starts afresh.
        let (saved_v, saved_a, saved_b) = (self.next_value, self.next_arg, self.next_block);
        (self.next_value, self.next_arg, self.next_block) = (0, 0, 0);
        self.indent(depth);
        self.out.push_str("func.func ");
        if let Some(Attribute::String(vis)) = o.attr("sym_visibility") {
            let _ = write!(self.out, "{vis} ");
        }
        self.out.push('@');
        let _ = write_symbol_name(&mut self.out, name);
        self.out.push('(');
        let entry = blocks[0];
        for (i, &a) in self.m.block(entry).args().iter().enumerate() {
            let n = format!("%arg{}", self.next_arg);
            self.next_arg += 1;
            let _ = write!(self.out, "{}{n}: {}", if i > 0 { ", " } else { "" }, self.m.value_type(a));
            self.names.insert(a, n);
        }
        self.out.push(')');
        match ft.results.as_slice() {
            [] => {}
            [one] if !matches!(one, Type::Function(_)) => {
                let _ = write!(self.out, " -> {one}");
            }
            many => {
                let list: Vec<String> = many.iter().map(|t| t.to_string()).collect();
                let _ = write!(self.out, " -> ({})", list.join(", "));
            }
        }
        let rest: Vec<_> = o
            .attributes
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "sym_name" | "function_type" | "sym_visibility"))
            .collect();
        if !rest.is_empty() {
            self.out.push_str(" attributes ");
            self.write_attr_dict(rest.into_iter());
        }
        self.out.push_str(" {\n");
        for inner in self.m.block_ops(entry) {
            self.print_op(inner, depth + 1);
        }
        self.indent(depth);
        self.out.push('}');
        self.print_loc(op);
        self.out.push('\n');
        (self.next_value, self.next_arg, self.next_block) = (saved_v, saved_a, saved_b);
    }

    fn print_return(&mut self, op: OpId, depth: usize) {
        let operands = self.m.op(op).operands().to_vec();
        self.indent(depth);
        self.out.push_str("return");
        if !operands.is_empty() {
            let names: Vec<String> = operands.iter().map(|v| self.name(*v).to_string()).collect();
            let types: Vec<String> = operands.iter().map(|v| self.m.value_type(*v).to_string()).collect();
            let _ = write!(self.out, " {} : {}", names.join(", "), types.join(", "));
        }
        self.print_loc(op);
        self.out.push('\n');
    }

    fn print_generic(&mut self, op: OpId, depth: usize) {
        let o = self.m.op(op);
        self.indent(depth);
        let results = o.results();
        // Regions are printed before the op's own results exist in MLIR's scoping, but names are
        // assigned up front so that numbering follows textual order of definitions.
        let first_result = self.next_value;
        if !results.is_empty() {
            self.name_results(op);
            if results.len() == 1 {
                let _ = write!(self.out, "%{first_result} = ");
            } else {
                let _ = write!(self.out, "%{first_result}:{} = ", results.len());
            }
        }
        let _ = write!(self.out, "\"{}\"(", o.name());
        let operands: Vec<String> = o.operands().iter().map(|v| self.name(*v).to_string()).collect();
        self.out.push_str(&operands.join(", "));
        self.out.push(')');
        let regions = o.regions().to_vec();
        if !regions.is_empty() {
            self.out.push_str(" (");
            for (i, r) in regions.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.print_region(*r, depth);
            }
            self.out.push(')');
        }
        if !o.attributes.is_empty() {
            self.out.push(' ');
            self.write_attr_dict(o.attributes.iter());
        }
        let ins: Vec<String> = o.operands().iter().map(|v| self.m.value_type(*v).to_string()).collect();
        let outs: Vec<String> = results.iter().map(|v| self.m.value_type(*v).to_string()).collect();
        let _ = write!(self.out, " : ({}) -> ", ins.join(", "));
        match (outs.as_slice(), results.first().map(|r| self.m.value_type(*r))) {
            ([one], Some(t)) if !matches!(t, Type::Function(_)) => self.out.push_str(one),
            _ => {
                let _ = write!(self.out, "({})", outs.join(", "));
            }
        }
        self.print_loc(op);
        self.out.push('\n');
    }

    fn print_region(&mut self, region: RegionId, depth: usize) {
        self.out.push_str("{\n");
        let blocks = self.m.region(region).blocks().to_vec();
        for (i, &b) in blocks.iter().enumerate() {
            self.print_block_header(b, i == 0, depth);
            for inner in self.m.block_ops(b) {
                self.print_op(inner, depth + 1);
            }
        }
        self.indent(depth);
        self.out.push('}');
    }

    fn print_block_header(&mut self, b: BlockId, entry: bool, depth: usize) {
        let args = self.m.block(b).args().to_vec();
        if entry && args.is_empty() {
            return;
        }
        self.indent(depth);
        let _ = write!(self.out, "^bb{}", self.next_block);
        self.next_block += 1;
        if !args.is_empty() {
            self.out.push('(');
            for (i, &a) in args.iter().enumerate() {
                let n = format!("%arg{}", self.next_arg);
                self.next_arg += 1;
                let _ = write!(self.out, "{}{n}: {}", if i > 0 { ", " } else { "" }, self.m.value_type(a));
                self.names.insert(a, n);
            }
            self.out.push(')');
        }
        self.out.push_str(":\n");
    }

    fn write_attr_dict<'b>(&mut self, entries: impl Iterator<Item = (&'b String, &'b Attribute)>) {
        struct Dict<'c, I>(std::cell::RefCell<Option<I>>, std::marker::PhantomData<&'c ()>);
        impl<'c, I: Iterator<Item = (&'c String, &'c Attribute)>> std::fmt::Display for Dict<'c, I> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_dict(f, self.0.borrow_mut().take().expect("printed once"))
            }
        }
        let _ = write!(self.out, "{}", Dict(std::cell::RefCell::new(Some(entries)), std::marker::PhantomData));
    }
}
