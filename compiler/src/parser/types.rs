//! Types: tensors (with the size limits hostile input meets), scalars and function types.

use super::*;

impl<'a> Parser<'a> {
    pub(super) fn parse_type(&mut self) -> PResult<Type> {
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
    pub(super) fn parse_tensor_body(&mut self, start: usize) -> PResult<TensorType> {
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

    pub(super) fn parse_type_list_parens(&mut self) -> PResult<Vec<Type>> {
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

    pub(super) fn parse_function_type(&mut self) -> PResult<FunctionType> {
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
}
