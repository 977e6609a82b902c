//! Cranelift JIT: the executor's loops as native code.
//!
//! Every program kind compiles to one function with a fixed C ABI: a pointer to the buffer
//! pointers, then two `i64`s that say which part of the work to do, so a caller can split
//! the work over threads. Shapes are constants baked into the code (the executor compiles
//! for static shapes); loops run on 128-bit vectors, Cranelift's x86-64 width, with scalar
//! tails.
//!
//! - [`elementwise`]: SSA programs over strided 2-D views (elementwise kernels, GEMM
//!   epilogues, data movement as strided copies).
//! - [`rows`]: reductions along a row (softmax, log-softmax, layer_norm, reduce_* and global
//!   pools) or across rows (reduce_* over a leading axis).
//! - [`pool`]: 2-D max and average pooling windows.
//! - `math` (private): the polynomial exp, log, tanh and erf all of them share; `loops`
//!   (private): counted loops and vector-then-scalar column loops.

mod elementwise;
mod loops;
pub(crate) mod math;
pub mod pool;
pub mod rows;

pub use elementwise::{Elementwise, Ew, EwFn};
pub use pool::PoolProgram;
pub use rows::{Reduction, RowOp, RowProgram};

use cranelift_codegen::ir::{types, AbiParam, Type, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

/// `fn(ptrs, begin, end)`: the rows (or planes) `begin..end` of the work. Row and pool
/// programs use it.
pub type RangeFn = unsafe extern "C" fn(*const *mut f32, i64, i64);

/// Owns the JIT memory; functions stay valid as long as it lives.
pub struct Jit {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    builder_ctx: FunctionBuilderContext,
    count: usize,
}

impl Jit {
    pub fn new() -> Result<Jit, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("this CPU is not supported by Cranelift: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ctx = module.make_context();
        Ok(Jit { module, ctx, builder_ctx: FunctionBuilderContext::new(), count: 0 })
    }

    /// Defines a `fn(ptrs, i64, i64)` whose body `build` emits (given the entry block's
    /// parameters and the pointer type; it must end with a return) and returns its code.
    fn define(&mut self, build: impl FnOnce(&mut FunctionBuilder, &[Value], Type)) -> Result<*const u8, String> {
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
        let name = format!("smelt{}", self.count);
        self.count += 1;
        let id = self.module.declare_function(&name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
        self.ctx.func.signature = sig;
        let config = self.module.target_config();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder_ctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let params = b.block_params(entry).to_vec();
            build(&mut b, &params, ptr);
            b.finalize(config);
        }
        self.module.define_function(id, &mut self.ctx).map_err(|e| format!("{e:?}"))?;
        self.module.clear_context(&mut self.ctx);
        self.module.finalize_definitions().map_err(|e| e.to_string())?;
        Ok(self.module.get_finalized_function(id))
    }

    /// Compiles an elementwise program.
    pub fn compile(&mut self, program: &Elementwise) -> Result<EwFn, String> {
        let code = self.define(|b, params, ptr| elementwise::build(b, program, params, ptr))?;
        // SAFETY: the function was compiled with exactly this signature.
        Ok(unsafe { std::mem::transmute::<*const u8, EwFn>(code) })
    }

    /// Compiles a row program (`begin..end` are rows).
    pub fn compile_rows(&mut self, program: &RowProgram) -> Result<RangeFn, String> {
        let code = self.define(|b, params, ptr| rows::build(b, program, params, ptr))?;
        // SAFETY: as above.
        Ok(unsafe { std::mem::transmute::<*const u8, RangeFn>(code) })
    }

    /// Compiles a pooling program (`begin..end` are planes).
    pub fn compile_pool(&mut self, program: &PoolProgram) -> Result<RangeFn, String> {
        let code = self.define(|b, params, ptr| pool::build(b, program, params, ptr))?;
        // SAFETY: as above.
        Ok(unsafe { std::mem::transmute::<*const u8, RangeFn>(code) })
    }
}
