//! Parses MLIR syntax into a [`Module`]: the generic op form for every op, and MLIR's custom
//! forms of `module`, `func.func` and `return`. Errors carry the file position of the offending
//! token; nothing in the input can make the parser panic (see `fuzz/`).

use crate::attributes::{Attribute, DenseElements, DenseStorage, ResourceHandle};
use crate::diagnostics::Diagnostic;
use crate::dialect::names;
use crate::dialect::{self, OpDef};
use crate::ir::{BlockId, Module, OpId, OpSpec, RegionId, ValueId};
use crate::location::Location;
use crate::types::{Dim, ElementType, FunctionType, TensorType, Type};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type PResult<T> = Result<T, Diagnostic>;

/// Parses `source` (named `file` in diagnostics). Top-level ops other than a single
/// `builtin.module` are wrapped in an implicit module, as MLIR does.
pub fn parse_module(source: &str, file: &str) -> PResult<Module> {
    let mut p = Parser {
        src: source.as_bytes(),
        text: source,
        line_starts: std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect(),
        pos: 0,
        file: file.into(),
        module: Module::new(Location::file(file, 1, 1)),
        scopes: vec![HashMap::new()],
        depth: 0,
    };
    p.skip_trivia();
    let body = p.module.body();
    let mut top = Vec::new();
    while !p.at_end() {
        top.push(p.parse_operation(body)?);
        p.skip_trivia();
    }
    // `module { ... }` written out: make it the root instead of nesting it.
    if let [only] = top[..] {
        if p.module.op(only).name() == names::MODULE {
            p.module.detach_op(only);
            let old_root = p.module.root();
            p.module.set_root(only);
            p.module.erase_op(old_root);
        }
    }
    Ok(p.module)
}

/// Values visible by name. A scope per region; lookups walk outwards.
type Scope = HashMap<String, ValueId>;

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    /// Byte offset of each line's start, for positions in diagnostics and locations.
    line_starts: Vec<usize>,
    pos: usize,
    file: Arc<str>,
    module: Module,
    scopes: Vec<Scope>,
    depth: usize,
}

/// Regions nest through recursion; bound it so that hostile input cannot overflow the stack.
const MAX_NESTING: usize = 64;
/// Largest tensor a type may describe (elements) and largest rank.
const MAX_ELEMENTS: u64 = 1 << 48;
const MAX_RANK: usize = 32;

impl<'a> Parser<'a> {
    // ---- positions and errors ----

    fn loc_at(&self, pos: usize) -> Location {
        let pos = pos.min(self.src.len());
        let line = self.line_starts.partition_point(|&start| start <= pos);
        let line_start = self.line_starts[line - 1];
        let col = self.text.get(line_start..pos).map_or(pos - line_start, |s| s.chars().count()) as u32 + 1;
        Location::FileLineCol { file: self.file.clone(), line: line as u32, col }
    }

    fn err<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(Diagnostic::error(self.loc_at(pos), msg))
    }

    // ---- characters ----

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_trivia(&mut self) {
        loop {
            while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                self.pos += 1;
            }
            if self.src[self.pos..].starts_with(b"//") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            } else {
                return;
            }
        }
    }

    /// Consumes `s` (after trivia) if it is next.
    fn eat(&mut self, s: &str) -> bool {
        self.skip_trivia();
        if self.src[self.pos..].starts_with(s.as_bytes()) {
            // A keyword must not run into an identifier character.
            let ident_like = s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
            let next = self.src.get(self.pos + s.len()).copied();
            if ident_like && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
                return false;
            }
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> PResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            let found = self.describe_next();
            self.err(self.pos, format!("expected '{s}', found {found}"))
        }
    }

    fn describe_next(&self) -> String {
        match self.text.get(self.pos..).and_then(|r| r.split_whitespace().next()) {
            None => "end of file".to_string(),
            Some(tok) => format!("'{}'", tok.chars().take(20).collect::<String>()),
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_$.]*`
    fn bare_id(&mut self) -> Option<&'a str> {
        self.skip_trivia();
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
            return None;
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'.') {
            self.pos += 1;
        }
        let text: &'a str = self.text;
        text.get(start..self.pos)
    }

    fn string_literal(&mut self) -> PResult<String> {
        self.skip_trivia();
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return self.err(start, format!("expected a string, found {}", self.describe_next()));
        }
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return self.err(start, "unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let esc = self.src.get(self.pos + 1..self.pos + 3);
                    match esc {
                        Some([b'"', ..]) | Some([b'\\', ..]) => {
                            bytes.push(esc.unwrap()[0]);
                            self.pos += 2;
                        }
                        Some([b'n', ..]) => {
                            bytes.push(b'\n');
                            self.pos += 2;
                        }
                        Some([b't', ..]) => {
                            bytes.push(b'\t');
                            self.pos += 2;
                        }
                        Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                            let hex = std::str::from_utf8(&[*h, *l]).unwrap().to_string();
                            bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                            self.pos += 3;
                        }
                        _ => return self.err(self.pos, "invalid escape in string"),
                    }
                }
                Some(c) => {
                    bytes.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(bytes).or_else(|_| self.err(start, "string is not valid UTF-8"))
    }

    /// `@name` or `@"name"`.
    fn symbol(&mut self) -> PResult<String> {
        self.expect("@")?;
        if self.peek() == Some(b'"') {
            return self.string_literal();
        }
        let start = self.pos;
        match self.bare_id() {
            Some(id) if self.pos == start + id.len() => Ok(id.to_string()),
            _ => self.err(start, "expected a symbol name after '@'"),
        }
    }

    /// A numeric literal's text: `-12`, `0.5`, `1.0e-05`, `0x7F800000`.
    fn number_text(&mut self) -> Option<(usize, &'a str)> {
        self.skip_trivia();
        let start = self.pos;
        let mut p = self.pos;
        if matches!(self.src.get(p), Some(b'-') | Some(b'+')) {
            p += 1;
        }
        if self.src[p..].starts_with(b"0x") {
            p += 2;
            while self.src.get(p).is_some_and(|c| c.is_ascii_hexdigit()) {
                p += 1;
            }
        } else {
            let digits = p;
            while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                p += 1;
            }
            if p == digits {
                return None;
            }
            if self.src.get(p) == Some(&b'.') {
                p += 1;
                while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                    p += 1;
                }
                if matches!(self.src.get(p), Some(b'e') | Some(b'E')) {
                    let mut q = p + 1;
                    if matches!(self.src.get(q), Some(b'-') | Some(b'+')) {
                        q += 1;
                    }
                    if self.src.get(q).is_some_and(|c| c.is_ascii_digit()) {
                        p = q;
                        while self.src.get(p).is_some_and(|c| c.is_ascii_digit()) {
                            p += 1;
                        }
                    }
                }
            }
        }
        self.pos = p;
        let text: &'a str = self.text;
        Some((start, &text[start..p]))
    }

    fn integer(&mut self) -> PResult<i64> {
        let pos = self.pos;
        match self.number_text() {
            Some((start, t)) => match parse_int(t) {
                Some(v) => Ok(v),
                None => self.err(start, format!("expected an integer, found '{t}'")),
            },
            None => self.err(pos, format!("expected an integer, found {}", self.describe_next())),
        }
    }

    // ---- types ----

    fn parse_type(&mut self) -> PResult<Type> {
        self.skip_trivia();
        let start = self.pos;
        if self.peek() == Some(b'(') {
            return Ok(Type::Function(Box::new(self.parse_function_type()?)));
        }
        let Some(id) = self.bare_id() else {
            return self.err(start, format!("expected a type, found {}", self.describe_next()));
        };
        let id = id.to_string();
        match id.as_str() {
            "tensor" => self.parse_tensor_body(start).map(Type::Tensor),
            "index" => Ok(Type::Index),
            "none" => Ok(Type::None),
            other => match ElementType::from_name(other) {
                Some(e) => Ok(Type::Scalar(e)),
                None => self.err(start, format!("unknown type '{other}'")),
            },
        }
    }

    /// After `tensor`: `<1x?x3xf32>` or `<*xf32>`.
    fn parse_tensor_body(&mut self, start: usize) -> PResult<TensorType> {
        if self.peek() != Some(b'<') {
            return self.err(self.pos, "expected '<' after 'tensor'");
        }
        self.pos += 1;
        let mut shape = Some(Vec::new());
        loop {
            match self.peek() {
                Some(b'*') => {
                    self.pos += 1;
                    shape = None;
                }
                Some(b'?') => {
                    self.pos += 1;
                    if let Some(s) = shape.as_mut() {
                        s.push(Dim::Dynamic);
                    }
                }
                Some(c) if c.is_ascii_digit() => {
                    let d = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let n: u64 = match self.text[d..self.pos].parse() {
                        Ok(n) => n,
                        Err(_) => return self.err(d, "dimension is too large"),
                    };
                    match shape.as_mut() {
                        Some(s) => s.push(Dim::Known(n)),
                        None => return self.err(d, "unranked tensor cannot have dimensions"),
                    }
                }
                _ => break,
            }
            if self.peek() == Some(b'x') {
                self.pos += 1;
            } else {
                return self.err(self.pos, "expected 'x' after a dimension");
            }
        }
        let e = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        let Some(element) = ElementType::from_name(&self.text[e..self.pos]) else {
            return self.err(e, format!("unknown element type '{}'", &self.text[e..self.pos]));
        };
        if self.peek() != Some(b'>') {
            return self.err(start, "expected '>' to close the tensor type");
        }
        self.pos += 1;
        // Bounding every type keeps all shape arithmetic downstream free of overflow.
        let rank = shape.as_ref().map_or(0, Vec::len);
        let elements = shape.iter().flatten().filter_map(|d| d.known()).try_fold(1u64, |a, d| a.checked_mul(d.max(1)));
        if rank > MAX_RANK || elements.is_none_or(|n| n > MAX_ELEMENTS) {
            return self
                .err(start, format!("tensor type is too large (at most {MAX_RANK} dimensions and 2^48 elements)"));
        }
        Ok(TensorType { shape, element })
    }

    fn parse_type_list_parens(&mut self) -> PResult<Vec<Type>> {
        self.expect("(")?;
        let mut types = Vec::new();
        if !self.eat(")") {
            loop {
                types.push(self.parse_type()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(types)
    }

    fn parse_function_type(&mut self) -> PResult<FunctionType> {
        let inputs = self.parse_type_list_parens()?;
        self.expect("->")?;
        self.skip_trivia();
        let results = if self.peek() == Some(b'(') {
            // `(T) -> (U)` versus `(T) -> (U) -> V`: a parenthesized list then '->' is a function.
            let save = self.pos;
            let list = self.parse_type_list_parens()?;
            if self.eat("->") {
                self.pos = save;
                vec![Type::Function(Box::new(self.parse_function_type()?))]
            } else {
                list
            }
        } else {
            vec![self.parse_type()?]
        };
        Ok(FunctionType { inputs, results })
    }

    // ---- attributes ----

    fn parse_attr_dict(&mut self) -> PResult<BTreeMap<String, Attribute>> {
        self.expect("{")?;
        let mut attrs = BTreeMap::new();
        if self.eat("}") {
            return Ok(attrs);
        }
        loop {
            self.skip_trivia();
            let start = self.pos;
            let name = if self.peek() == Some(b'"') {
                self.string_literal()?
            } else {
                match self.bare_id() {
                    Some(id) => id.to_string(),
                    None => {
                        return self.err(start, format!("expected an attribute name, found {}", self.describe_next()))
                    }
                }
            };
            let value = if self.eat("=") { self.parse_attribute()? } else { Attribute::Unit };
            if attrs.insert(name.clone(), value).is_some() {
                return self.err(start, format!("attribute '{name}' occurs more than once"));
            }
            if self.eat("}") {
                return Ok(attrs);
            }
            self.expect(",")?;
        }
    }

    fn parse_attribute(&mut self) -> PResult<Attribute> {
        self.skip_trivia();
        let start = self.pos;
        match self.peek() {
            Some(b'"') => return Ok(Attribute::String(self.string_literal()?)),
            Some(b'@') => return Ok(Attribute::Symbol(self.symbol()?)),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.nested(|p| p.parse_attribute())?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                return Ok(Attribute::Array(items));
            }
            Some(b'{') => return Ok(Attribute::Dict(self.nested(|p| p.parse_attr_dict())?)),
            Some(b'(') => return Ok(Attribute::Type(self.parse_type()?)),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let Some((s, text)) = self.number_text() else {
                    return self.err(start, format!("expected an attribute, found {}", self.describe_next()));
                };
                let text = text.to_string();
                let ty = if self.eat(":") { Some(self.parse_type()?) } else { None };
                return self.number_attribute(s, &text, ty);
            }
            _ => {}
        }
        let Some(id) = self.bare_id() else {
            return self.err(start, format!("expected an attribute, found {}", self.describe_next()));
        };
        match id {
            "true" => Ok(Attribute::Bool(true)),
            "false" => Ok(Attribute::Bool(false)),
            "unit" => Ok(Attribute::Unit),
            "array" => self.parse_dense_array(start),
            "dense" => self.parse_dense(start),
            "dense_resource" => {
                self.expect("<")?;
                self.skip_trivia();
                let name = if self.peek() == Some(b'"') {
                    self.string_literal()?
                } else {
                    match self.bare_id() {
                        Some(id) => id.to_string(),
                        None => return self.err(self.pos, "expected a resource name"),
                    }
                };
                self.expect(">")?;
                self.expect(":")?;
                let tpos = self.pos;
                let Type::Tensor(ty) = self.parse_type()? else {
                    return self.err(tpos, "dense_resource needs a tensor type");
                };
                Ok(Attribute::Dense(DenseElements { ty, storage: DenseStorage::Resource(ResourceHandle(name.into())) }))
            }
            _ => {
                self.pos = start;
                Ok(Attribute::Type(self.parse_type()?))
            }
        }
    }

    fn number_attribute(&self, start: usize, text: &str, ty: Option<Type>) -> PResult<Attribute> {
        let is_float_text =
            text.contains('.') || (text.contains("0x") && matches!(ty, Some(Type::Scalar(e)) if e.is_float()));
        match ty {
            None if is_float_text => match text.parse::<f64>() {
                Ok(v) => Ok(Attribute::Float(v, ElementType::F64)),
                Err(_) => self.err(start, format!("invalid float '{text}'")),
            },
            None => match parse_int(text) {
                Some(v) => Ok(Attribute::Int(v, ElementType::I64)),
                None => self.err(start, format!("invalid integer '{text}'")),
            },
            Some(Type::Scalar(e)) if e.is_float() => match parse_float(text, e) {
                Some(v) => Ok(Attribute::Float(v, e)),
                None => self.err(start, format!("invalid {e} literal '{text}'")),
            },
            Some(Type::Scalar(e)) if !is_float_text => match parse_int(text) {
                Some(v) => Ok(Attribute::Int(v, e)),
                None => self.err(start, format!("invalid integer '{text}'")),
            },
            Some(Type::Index) => self.err(start, "index-typed attributes are not supported; use i64"),
            Some(other) => self.err(start, format!("a number cannot have type {other}")),
        }
    }

    /// `array<i64: 1, 2>`, `array<f32: 0.5>`, `array<i64>`.
    fn parse_dense_array(&mut self, start: usize) -> PResult<Attribute> {
        self.expect("<")?;
        let tpos = self.pos;
        let Type::Scalar(e) = self.parse_type()? else {
            return self.err(tpos, "array element type must be a scalar type");
        };
        let mut ints = Vec::new();
        let mut floats = Vec::new();
        if self.eat(":") {
            loop {
                let (s, text) = match self.number_text() {
                    Some((s, t)) => (s, t.to_string()),
                    None => return self.err(self.pos, "expected a number in array"),
                };
                if e == ElementType::I64 {
                    ints.push(parse_int(&text).map_or_else(|| self.err(s, format!("invalid integer '{text}'")), Ok)?);
                } else if e.is_float() {
                    floats.push(
                        parse_float(&text, e).map_or_else(|| self.err(s, format!("invalid float '{text}'")), Ok)?,
                    );
                } else {
                    return self.err(start, format!("array<{e}> is not supported; use array<i64>"));
                }
                if !self.eat(",") {
                    break;
                }
            }
        }
        self.expect(">")?;
        if e == ElementType::I64 {
            Ok(Attribute::I64Array(ints))
        } else if e.is_float() {
            Ok(Attribute::FloatArray(floats, e))
        } else {
            self.err(start, format!("array<{e}> is not supported; use array<i64>"))
        }
    }

    /// `dense<1.0> : tensor<4xf32>`, `dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>`, `dense<> : ...`.
    fn parse_dense(&mut self, start: usize) -> PResult<Attribute> {
        self.expect("<")?;
        let mut elements: Vec<(usize, String)> = Vec::new();
        let mut shape: Vec<Option<u64>> = Vec::new();
        self.skip_trivia();
        if self.peek() != Some(b'>') {
            self.parse_dense_literal(&mut elements, &mut shape, 0)?;
        }
        self.expect(">")?;
        self.expect(":")?;
        let tpos = self.pos;
        let Type::Tensor(ty) = self.parse_type()? else {
            return self.err(tpos, "dense elements need a tensor type");
        };
        let Some(static_shape) = ty.static_shape() else {
            return self.err(tpos, format!("dense elements need a static type, got {ty}"));
        };
        let count: u64 = ty.num_elements().unwrap_or(u64::MAX);
        let literal_count = elements.len() as u64;
        if !(literal_count == count || literal_count == 1 && count > 0 || literal_count == 0 && count == 0) {
            return self.err(start, format!("literal has {literal_count} elements but {ty} holds {count}"));
        }
        let shape: Vec<u64> = shape.into_iter().map(|d| d.unwrap_or(0)).collect();
        if literal_count > 1 && shape != static_shape {
            return self.err(start, format!("literal shape {shape:?} does not match {ty}"));
        }
        let mut bytes = Vec::with_capacity(elements.len() * ty.element.byte_size());
        for (pos, text) in &elements {
            match text.as_str() {
                "true" | "false" if ty.element == ElementType::I1 => bytes.push((text == "true") as u8),
                _ if ty.element.is_float() => match parse_float(text, ty.element) {
                    Some(v) => crate::scalar::encode(ty.element, v, &mut bytes),
                    None => return self.err(*pos, format!("invalid {} literal '{text}'", ty.element)),
                },
                _ => match parse_int(text) {
                    Some(v) => crate::scalar::encode_int(ty.element, v, &mut bytes),
                    None => return self.err(*pos, format!("invalid {} literal '{text}'", ty.element)),
                },
            }
        }
        Ok(Attribute::Dense(DenseElements { ty, storage: DenseStorage::Inline(bytes.into()) }))
    }

    fn parse_dense_literal(
        &mut self,
        out: &mut Vec<(usize, String)>,
        shape: &mut Vec<Option<u64>>,
        depth: usize,
    ) -> PResult<()> {
        if depth > MAX_NESTING {
            return self.err(self.pos, "literal nests too deeply");
        }
        if self.eat("[") {
            let mut n = 0u64;
            if !self.eat("]") {
                loop {
                    self.parse_dense_literal(out, shape, depth + 1)?;
                    n += 1;
                    if self.eat("]") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            if shape.len() <= depth {
                shape.resize(depth + 1, None);
            }
            match shape[depth] {
                None => shape[depth] = Some(n),
                Some(m) if m != n => return self.err(self.pos, "ragged dense literal"),
                Some(_) => {}
            }
            return Ok(());
        }
        self.skip_trivia();
        let start = self.pos;
        if let Some(id) = self.bare_id() {
            if id == "true" || id == "false" {
                out.push((start, id.to_string()));
                return Ok(());
            }
            return self.err(start, format!("unexpected '{id}' in dense literal"));
        }
        match self.number_text() {
            Some((s, t)) => {
                out.push((s, t.to_string()));
                Ok(())
            }
            None => self.err(start, format!("expected a number in dense literal, found {}", self.describe_next())),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            return self.err(self.pos, "nesting is too deep");
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ---- locations ----

    fn parse_trailing_loc(&mut self) -> PResult<Option<Location>> {
        if !self.eat("loc") {
            return Ok(None);
        }
        self.expect("(")?;
        let loc = self.nested(|p| p.parse_loc_inner())?;
        self.expect(")")?;
        Ok(Some(loc))
    }

    fn parse_loc_inner(&mut self) -> PResult<Location> {
        self.skip_trivia();
        if self.eat("unknown") {
            return Ok(Location::Unknown);
        }
        if self.eat("fused") {
            self.expect("[")?;
            let mut parts = Vec::new();
            loop {
                parts.push(self.nested(|p| p.parse_loc_inner())?);
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
            return Ok(Location::Fused(parts));
        }
        let name = self.string_literal()?;
        if self.eat(":") {
            let line = self.integer()?;
            self.expect(":")?;
            let col = self.integer()?;
            return Ok(Location::FileLineCol {
                file: name.into(),
                line: line.clamp(0, u32::MAX as i64) as u32,
                col: col.clamp(0, u32::MAX as i64) as u32,
            });
        }
        let child = if self.eat("(") {
            let c = self.nested(|p| p.parse_loc_inner())?;
            self.expect(")")?;
            Some(Box::new(c))
        } else {
            None
        };
        Ok(Location::Name { name: name.into(), child })
    }

    // ---- values ----

    /// `%name` or `%name#3` (the raw text, including the `#` suffix).
    fn value_ref(&mut self) -> PResult<(usize, String)> {
        self.skip_trivia();
        let start = self.pos;
        if self.peek() != Some(b'%') {
            return self.err(start, format!("expected an SSA value, found {}", self.describe_next()));
        }
        self.pos += 1;
        let name_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b'-')) {
            self.pos += 1;
        }
        if self.pos == name_start {
            return self.err(start, "expected a name after '%'");
        }
        if self.peek() == Some(b'#') {
            self.pos += 1;
            let d = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == d {
                return self.err(d, "expected a result number after '#'");
            }
        }
        Ok((start, self.text[start..self.pos].to_string()))
    }

    fn lookup(&self, pos: usize, name: &str) -> PResult<ValueId> {
        for scope in self.scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return Ok(*v);
            }
        }
        self.err(pos, format!("use of undefined value '{name}'"))
    }

    fn define(&mut self, pos: usize, name: String, value: ValueId) -> PResult<()> {
        if self.scopes.iter().any(|s| s.contains_key(&name)) {
            return self.err(pos, format!("redefinition of value '{name}'"));
        }
        self.scopes.last_mut().expect("a scope is open").insert(name, value);
        Ok(())
    }

    // ---- operations ----

    /// Parses one operation and appends it to `block`.
    fn parse_operation(&mut self, block: BlockId) -> PResult<OpId> {
        self.skip_trivia();
        let start = self.pos;
        let mut result_names: Vec<(usize, String, usize)> = Vec::new();
        if self.peek() == Some(b'%') {
            loop {
                let (pos, name) = self.value_ref()?;
                if name.contains('#') {
                    return self.err(pos, "a result name cannot have a '#' suffix");
                }
                let count = if self.eat(":") { self.integer()? } else { 1 };
                if !(1..=1 << 16).contains(&count) {
                    return self.err(pos, "result count must be positive");
                }
                result_names.push((pos, name, count as usize));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("=")?;
        }
        self.skip_trivia();
        let name_pos = self.pos;
        let op = if self.peek() == Some(b'"') {
            self.parse_generic(name_pos)?
        } else {
            match self.bare_id().map(str::to_string) {
                Some(k) if k == "module" || k == names::MODULE => self.parse_custom_module(name_pos)?,
                Some(k) if k == names::FUNC => self.parse_custom_func(name_pos)?,
                Some(k) if k == "return" || k == names::RETURN => self.parse_custom_return(name_pos)?,
                Some(k) => return self.err(name_pos, format!("unknown operation '{k}' (custom syntax is supported for module, func.func and return; use the generic form \"dialect.op\"(...) for others)")),
                None => return self.err(name_pos, format!("expected an operation, found {}", self.describe_next())),
            }
        };
        // Bind result names.
        let results = self.module.op(op).results().to_vec();
        let declared: usize = result_names.iter().map(|r| r.2).sum();
        if !result_names.is_empty() && declared != results.len() {
            self.module.erase_op(op);
            return self
                .err(start, format!("operation defines {} results but {declared} names are given", results.len()));
        }
        let mut next = 0;
        for (pos, name, count) in result_names {
            if count == 1 {
                self.define(pos, name, results[next])?;
            } else {
                for i in 0..count {
                    self.define(pos, format!("{name}#{i}"), results[next + i])?;
                }
            }
            next += count;
        }
        self.module.append_op(block, op);
        Ok(op)
    }

    fn op_def(&self, pos: usize, name: &str) -> PResult<&'static OpDef> {
        dialect::lookup(name).map_or_else(
            || {
                let hint = if name.contains('.') {
                    String::new()
                } else {
                    " (operation names need a dialect prefix, like \"smelt.relu\")".to_string()
                };
                self.err(pos, format!("unknown operation '{name}'{hint}"))
            },
            Ok,
        )
    }

    fn parse_generic(&mut self, name_pos: usize) -> PResult<OpId> {
        let name = self.string_literal()?;
        let def = self.op_def(name_pos, &name)?;
        self.expect("(")?;
        let mut operands: Vec<(usize, String)> = Vec::new();
        if !self.eat(")") {
            loop {
                operands.push(self.value_ref()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let operand_values: Vec<ValueId> = operands.iter().map(|(p, n)| self.lookup(*p, n)).collect::<PResult<_>>()?;
        self.skip_trivia();
        if self.peek() == Some(b'[') {
            return self.err(self.pos, "successors are not supported: smelt functions are single-block");
        }
        // Properties (`<{...}>`) are read as attributes; smelt ops have none of their own.
        let mut attributes = BTreeMap::new();
        if self.src[self.pos..].starts_with(b"<{") {
            self.pos += 1;
            attributes = self.parse_attr_dict()?;
            self.expect(">")?;
        }
        let mut regions = Vec::new();
        self.skip_trivia();
        if self.src[self.pos..].starts_with(b"({") || (self.peek() == Some(b'(') && self.peek_after_ws(1) == Some(b'{'))
        {
            self.expect("(")?;
            loop {
                regions.push(self.nested(|p| p.parse_region(&[], def.traits.isolated_from_above))?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.skip_trivia();
        if self.peek() == Some(b'{') {
            for (k, v) in self.parse_attr_dict()? {
                attributes.insert(k, v);
            }
        }
        self.expect(":")?;
        let tpos = self.pos;
        let ft = self.parse_function_type()?;
        if ft.inputs.len() != operands.len() {
            return self
                .err(tpos, format!("'{name}' has {} operands but its type lists {}", operands.len(), ft.inputs.len()));
        }
        for ((pos, n), (v, t)) in operands.iter().zip(operand_values.iter().zip(&ft.inputs)) {
            let actual = self.module.value_type(*v);
            if actual != t {
                return self.err(*pos, format!("type mismatch: '{n}' has type {actual} but '{name}' declares {t}"));
            }
        }
        let loc = self.parse_trailing_loc()?.unwrap_or_else(|| self.loc_at(name_pos));
        let op = self.module.create_op(OpSpec {
            def,
            operands: operand_values,
            result_types: ft.results,
            attributes,
            regions: 0,
            loc,
        });
        for r in regions {
            self.module.attach_region(op, r);
        }
        Ok(op)
    }

    fn peek_after_ws(&self, offset: usize) -> Option<u8> {
        let mut p = self.pos + offset;
        while self.src.get(p).is_some_and(|c| c.is_ascii_whitespace()) {
            p += 1;
        }
        self.src.get(p).copied()
    }

    /// `{ ops }` or `{ ^bb0(%a: T): ops ^bb1: ... }`. `entry_args` are pre-bound names for the
    /// entry block (function arguments).
    fn parse_region(&mut self, entry_args: &[(usize, String, Type)], isolated: bool) -> PResult<RegionId> {
        self.expect("{")?;
        let region = self.module.new_region();
        // Isolated regions may not see outer values: hide them behind a barrier.
        let saved = if isolated { Some(std::mem::replace(&mut self.scopes, vec![HashMap::new()])) } else { None };
        self.scopes.push(HashMap::new());
        let result = self.parse_region_body(region, entry_args);
        self.scopes.pop();
        if let Some(s) = saved {
            self.scopes = s;
        }
        result?;
        Ok(region)
    }

    fn parse_region_body(&mut self, region: RegionId, entry_args: &[(usize, String, Type)]) -> PResult<()> {
        let mut block: Option<BlockId> = None;
        if !entry_args.is_empty() {
            let types: Vec<Type> = entry_args.iter().map(|a| a.2.clone()).collect();
            let b = self.module.add_block(region, &types);
            let args = self.module.block(b).args().to_vec();
            for ((pos, name, _), v) in entry_args.iter().zip(args) {
                self.define(*pos, name.clone(), v)?;
            }
            block = Some(b);
        }
        loop {
            self.skip_trivia();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    if block.is_none() {
                        self.module.add_block(region, &[]);
                    }
                    return Ok(());
                }
                None => return self.err(self.pos, "expected '}' to close the region"),
                Some(b'^') => {
                    let label = self.pos;
                    if !entry_args.is_empty()
                        && self.module.region(region).blocks().len() == 1
                        && self.module.block_ops(block.unwrap()).next().is_none()
                    {
                        return self.err(label, "the entry block of a function takes its arguments from the signature");
                    }
                    self.pos += 1;
                    if self.bare_id().is_none() {
                        return self.err(label, "expected a block name after '^'");
                    }
                    let b = self.module.add_block(region, &[]);
                    if self.eat("(") {
                        loop {
                            let (pos, name) = self.value_ref()?;
                            self.expect(":")?;
                            let ty = self.parse_type()?;
                            let v = self.module.add_block_arg(b, ty);
                            self.define(pos, name, v)?;
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    self.expect(":")?;
                    block = Some(b);
                }
                Some(_) => {
                    let b = match block {
                        Some(b) => b,
                        None => {
                            let b = self.module.add_block(region, &[]);
                            block = Some(b);
                            b
                        }
                    };
                    self.parse_operation(b)?;
                }
            }
        }
    }

    fn parse_custom_module(&mut self, name_pos: usize) -> PResult<OpId> {
        let mut attributes = BTreeMap::new();
        self.skip_trivia();
        if self.peek() == Some(b'@') {
            attributes.insert("sym_name".to_string(), Attribute::Symbol(self.symbol()?));
        }
        if self.eat("attributes") {
            for (k, v) in self.parse_attr_dict()? {
                attributes.insert(k, v);
            }
        }
        let region = self.nested(|p| p.parse_region(&[], true))?;
        let loc = self.parse_trailing_loc()?.unwrap_or_else(|| self.loc_at(name_pos));
        let op = self.module.create_op(OpSpec {
            def: dialect::lookup(names::MODULE).unwrap(),
            operands: vec![],
            result_types: vec![],
            attributes,
            regions: 0,
            loc,
        });
        self.module.attach_region(op, region);
        Ok(op)
    }

    fn parse_custom_func(&mut self, name_pos: usize) -> PResult<OpId> {
        let mut attributes = BTreeMap::new();
        self.skip_trivia();
        if let Some(vis) =
            ["private", "public", "nested"].into_iter().find(|v| self.src[self.pos..].starts_with(v.as_bytes()))
        {
            self.eat(vis);
            attributes.insert("sym_visibility".to_string(), Attribute::String(vis.to_string()));
        }
        let name = self.symbol()?;
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                let (pos, n) = self.value_ref()?;
                self.expect(":")?;
                let ty = self.parse_type()?;
                self.parse_trailing_loc()?;
                args.push((pos, n, ty));
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let results = if self.eat("->") {
            self.skip_trivia();
            if self.peek() == Some(b'(') {
                self.parse_type_list_parens()?
            } else {
                vec![self.parse_type()?]
            }
        } else {
            Vec::new()
        };
        if self.eat("attributes") {
            for (k, v) in self.parse_attr_dict()? {
                attributes.insert(k, v);
            }
        }
        let ft = FunctionType { inputs: args.iter().map(|a| a.2.clone()).collect(), results };
        attributes.insert("sym_name".to_string(), Attribute::String(name));
        attributes.insert("function_type".to_string(), Attribute::Type(Type::Function(Box::new(ft))));
        let region = self.nested(|p| p.parse_region(&args, true))?;
        let loc = self.parse_trailing_loc()?.unwrap_or_else(|| self.loc_at(name_pos));
        let op = self.module.create_op(OpSpec {
            def: dialect::lookup(names::FUNC).unwrap(),
            operands: vec![],
            result_types: vec![],
            attributes,
            regions: 0,
            loc,
        });
        self.module.attach_region(op, region);
        Ok(op)
    }

    fn parse_custom_return(&mut self, name_pos: usize) -> PResult<OpId> {
        let mut operands = Vec::new();
        self.skip_trivia();
        if self.peek() == Some(b'%') {
            loop {
                operands.push(self.value_ref()?);
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(":")?;
            let mut types = Vec::new();
            loop {
                types.push((self.pos, self.parse_type()?));
                if !self.eat(",") {
                    break;
                }
            }
            if types.len() != operands.len() {
                return self.err(name_pos, format!("return has {} values but {} types", operands.len(), types.len()));
            }
            for ((pos, n), (_, t)) in operands.iter().zip(&types) {
                let v = self.lookup(*pos, n)?;
                if self.module.value_type(v) != t {
                    return self.err(
                        *pos,
                        format!("type mismatch: '{n}' has type {} but return declares {t}", self.module.value_type(v)),
                    );
                }
            }
        }
        let values: Vec<ValueId> = operands.iter().map(|(p, n)| self.lookup(*p, n)).collect::<PResult<_>>()?;
        let loc = self.parse_trailing_loc()?.unwrap_or_else(|| self.loc_at(name_pos));
        Ok(self.module.create_op(OpSpec {
            def: dialect::lookup(names::RETURN).unwrap(),
            operands: values,
            result_types: vec![],
            attributes: BTreeMap::new(),
            regions: 0,
            loc,
        }))
    }
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    text.parse().ok()
}

/// Decimal text, or a hex bit pattern of the float type (how MLIR spells inf and nan).
fn parse_float(text: &str, ty: ElementType) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        let bits = u64::from_str_radix(hex, 16).ok()?;
        return Some(match ty {
            ElementType::F32 => f32::from_bits(u32::try_from(bits).ok()?) as f64,
            ElementType::F16 => half::f16::from_bits(u16::try_from(bits).ok()?).to_f64(),
            ElementType::BF16 => half::bf16::from_bits(u16::try_from(bits).ok()?).to_f64(),
            _ => f64::from_bits(bits),
        });
    }
    text.parse().ok()
}
