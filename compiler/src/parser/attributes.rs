//! Attributes: dictionaries, numbers, strings, arrays, types, symbols and dense elements.

use super::*;

impl Parser<'_> {
    pub(super) fn parse_attr_dict(&mut self) -> PResult<BTreeMap<String, Attribute>> {
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

    pub(super) fn parse_attribute(&mut self) -> PResult<Attribute> {
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

    pub(super) fn number_attribute(&self, start: usize, text: &str, ty: Option<Type>) -> PResult<Attribute> {
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
    pub(super) fn parse_dense_array(&mut self, start: usize) -> PResult<Attribute> {
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
    pub(super) fn parse_dense(&mut self, start: usize) -> PResult<Attribute> {
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
                    Some(v) if int_fits(ty.element, v) => crate::scalar::encode_int(ty.element, v, &mut bytes),
                    Some(_) => return self.err(*pos, format!("{} literal '{text}' is out of range", ty.element)),
                    None => return self.err(*pos, format!("invalid {} literal '{text}'", ty.element)),
                },
            }
        }
        Ok(Attribute::Dense(DenseElements { ty, storage: DenseStorage::Inline(bytes.into()) }))
    }

    pub(super) fn parse_dense_literal(
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
}

/// Whether `v` is a value of `element` read as signed or as unsigned (as MLIR accepts for
/// signless integers); 64-bit types hold every `i64`.
fn int_fits(element: ElementType, v: i64) -> bool {
    let bits = element.byte_size() as u32 * 8;
    if element == ElementType::I1 {
        return v == 0 || v == 1 || v == -1;
    }
    bits >= 64 || (-(1i64 << (bits - 1))..(1i64 << bits)).contains(&v)
}
