//! Operations, regions and blocks: the generic form, MLIR's custom forms of `module`,
//! `func.func` and `return`, value scopes and locations.

use super::*;

impl<'a> Parser<'a> {
    pub(super) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            return self.err(self.pos, "nesting is too deep");
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ---- locations ----

    pub(super) fn parse_trailing_loc(&mut self) -> PResult<Option<Location>> {
        if !self.eat("loc") {
            return Ok(None);
        }
        self.expect("(")?;
        let loc = self.nested(|p| p.parse_loc_inner())?;
        self.expect(")")?;
        Ok(Some(loc))
    }

    pub(super) fn parse_loc_inner(&mut self) -> PResult<Location> {
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
    pub(super) fn value_ref(&mut self) -> PResult<(usize, String)> {
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

    pub(super) fn lookup(&self, pos: usize, name: &str) -> PResult<ValueId> {
        for scope in self.scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return Ok(*v);
            }
        }
        self.err(pos, format!("use of undefined value '{name}'"))
    }

    pub(super) fn define(&mut self, pos: usize, name: String, value: ValueId) -> PResult<()> {
        if self.scopes.iter().any(|s| s.contains_key(&name)) {
            return self.err(pos, format!("redefinition of value '{name}'"));
        }
        self.scopes.last_mut().expect("a scope is open").insert(name, value);
        Ok(())
    }

    // ---- operations ----

    /// Parses one operation and appends it to `block`.
    pub(super) fn parse_operation(&mut self, block: BlockId) -> PResult<OpId> {
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

    pub(super) fn op_def(&self, pos: usize, name: &str) -> PResult<&'static OpDef> {
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

    pub(super) fn parse_generic(&mut self, name_pos: usize) -> PResult<OpId> {
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

    pub(super) fn peek_after_ws(&self, offset: usize) -> Option<u8> {
        let mut p = self.pos + offset;
        while self.src.get(p).is_some_and(|c| c.is_ascii_whitespace()) {
            p += 1;
        }
        self.src.get(p).copied()
    }

    /// `{ ops }` or `{ ^bb0(%a: T): ops ^bb1: ... }`. `entry_args` are pre-bound names for the
    /// entry block (function arguments).
    pub(super) fn parse_region(&mut self, entry_args: &[(usize, String, Type)], isolated: bool) -> PResult<RegionId> {
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

    pub(super) fn parse_region_body(&mut self, region: RegionId, entry_args: &[(usize, String, Type)]) -> PResult<()> {
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

    pub(super) fn parse_custom_module(&mut self, name_pos: usize) -> PResult<OpId> {
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

    pub(super) fn parse_custom_func(&mut self, name_pos: usize) -> PResult<OpId> {
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

    pub(super) fn parse_custom_return(&mut self, name_pos: usize) -> PResult<OpId> {
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
