//! Lowering: each instruction of a verified function becomes kernel dispatches
//! over tensors (IR values, packed parameters, scratch). Shape-only ops
//! (`reshape`) and reductions across ranks (`all_reduce` and its start/wait,
//! recorded for a runtime with several ranks: see `collective.rs`) become
//! aliases and cost no dispatch; a `cache` becomes a copy into its kept
//! tensor, and the dispatches only it needs are marked (see `cache.rs`). Some
//! instructions are lowered as a group: the slices of one value along one
//! axis, at the first of them, as `split` dispatches; an attention layer's
//! split, RoPE and KV-cache writes, at the last of them, as one
//! `rotary_split` (see `ops/rotary_split.rs`).
//!
//! Every size a kernel needs is an [`SizeExpr`] over the symbolic dims, so one
//! lowered function serves every size up to the declared bounds.

mod cache;
mod collective;
mod error;
mod ops;
mod target;
mod tensor;

use std::collections::HashMap;

use seam_bundle::Packing;
use seam_core::SizeExpr;
use seam_ir::{
    DType, Dim, EncodedWeight, Function, Instr, Model, Operand, ParamId, TensorType, ValueId,
};
use seam_shaders::{Kernel, ScalarType, ShaderError};

pub use cache::LoweredCache;
pub use collective::LoweredCollective;
pub use error::LowerError;
pub use ops::LoweredExperts;
pub use target::{Target, TargetKind};
pub use tensor::{Source, TensorId, TensorInfo};

/// One storage binding of a step: a byte range of a tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The tensor bound.
    pub tensor: TensorId,
    /// Byte offset into it.
    pub offset: u64,
    /// Bytes bound; `None` to the end.
    pub size: Option<u64>,
}

/// One kernel dispatch.
#[derive(Clone, Debug)]
pub struct Step {
    /// The kernel.
    pub kernel: Kernel,
    /// One argument per storage binding, in binding order.
    pub args: Vec<Arg>,
    /// Values of the kernel's dynamic sizes.
    pub sizes: Vec<(String, SizeExpr)>,
    /// Tensors the step writes (the others it reads).
    pub writes: Vec<TensorId>,
    /// The cache (index into [`Lowered::caches`]) whose producer alone needs
    /// this step: a call reusing that cache skips it.
    pub cache: Option<usize>,
}

/// A function lowered to dispatches.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The function's name.
    pub name: String,
    /// Every tensor.
    pub tensors: Vec<TensorInfo>,
    /// Dispatches in order.
    pub steps: Vec<Step>,
    /// Input tensors that are not states, in signature order, with their IR types.
    pub inputs: Vec<(TensorId, TensorType)>,
    /// Output tensors that are not states, in order, with their IR types.
    pub outputs: Vec<(TensorId, TensorType)>,
    /// The states: name, tensor (updated in place, so input and output share it)
    /// and IR type.
    pub states: Vec<(String, TensorId, TensorType)>,
    /// The states' length dim and the rows each call appends (`None` without
    /// states, or when the states are pools).
    pub state_use: Option<(String, SizeExpr)>,
    /// The `cache` ops, each kept in a session-lived tensor.
    pub caches: Vec<LoweredCache>,
    /// The MoE layers, in step order.
    pub expert_layers: Vec<LoweredExperts>,
    /// The reductions across ranks, in step order.
    pub collectives: Vec<LoweredCollective>,
}

/// Lowers one function of a verified model for `target`.
pub fn lower_function(
    model: &Model,
    func: &Function,
    target: &Target,
) -> Result<Lowered, LowerError> {
    let mut cx = LowerCx {
        model,
        func,
        target,
        tensors: Vec::new(),
        steps: Vec::new(),
        of_value: HashMap::new(),
        of_param: HashMap::new(),
        grouped_plans: HashMap::new(),
        caches: Vec::new(),
        cache_copies: Vec::new(),
        expert_layers: Vec::new(),
        collectives: Vec::new(),
    };
    let inputs = func
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| !func.is_state_input(*i))
        .map(|(_, &v)| (cx.value_tensor(v), func.value(v).ty.clone()))
        .collect();
    let states = func
        .states
        .iter()
        .map(|s| {
            let v = func.inputs[s.input];
            let value = func.value(v);
            (value.name.clone(), cx.value_tensor(v), value.ty.clone())
        })
        .collect::<Vec<_>>();
    let groups = ops::groups(func);
    for (i, instr) in func.body.iter().enumerate() {
        match groups.get(&i) {
            Some(group) => ops::lower_group(&mut cx, group)?,
            None => ops::lower_instr(&mut cx, instr)?,
        }
    }
    for (s, (name, t, _)) in func.states.iter().zip(&states) {
        if cx.value_tensor(func.outputs[s.output]) != *t {
            return Err(LowerError::Unsupported {
                op: "state",
                value: name.clone(),
                reason: "a state must be updated in place by one `write_tail` or `write_rows`"
                    .into(),
            });
        }
    }
    let outputs: Vec<(TensorId, TensorType)> = func
        .outputs
        .iter()
        .enumerate()
        .filter(|(i, _)| !func.is_state_output(*i))
        .map(|(_, &v)| (cx.value_tensor(v), func.value(v).ty.clone()))
        .collect();
    if !cx.caches.is_empty() {
        let kept = outputs
            .iter()
            .map(|(t, _)| *t)
            .chain(states.iter().map(|(_, t, _)| *t))
            .collect();
        cache::mark_producers(&mut cx.steps, &cx.cache_copies, &kept);
    }
    check_binding_sizes(model, &cx.tensors, target)?;
    let state_use = seam_ir::state_use(model, func).map(|u| (u.length_dim, dim_expr(&u.advance)));
    Ok(Lowered {
        name: func.name.clone(),
        tensors: cx.tensors,
        steps: cx.steps,
        inputs,
        outputs,
        states,
        state_use,
        caches: cx.caches,
        expert_layers: cx.expert_layers,
        collectives: cx.collectives,
    })
}

/// Refuses a function whose activations (or states) at the dims' bounds exceed
/// what the device binds in one storage binding: the runtime binds each
/// activation whole, so such a bundle could only fail at run time. Params are
/// split across bindings by the lowering and are not checked here.
fn check_binding_sizes(
    model: &Model,
    tensors: &[TensorInfo],
    target: &Target,
) -> Result<(), LowerError> {
    let limit = target.limits.max_storage_buffer_binding_size;
    let bound = |d: &str| model.dim(d).map(|b| b.max);
    for t in tensors {
        if matches!(t.source, Source::Param(..)) {
            continue;
        }
        let Ok(bytes) = t.bytes().eval(&bound) else {
            continue;
        };
        if bytes > limit {
            let bounds: Vec<String> = model
                .dims
                .iter()
                .map(|d| format!("{} <= {}", d.name, d.max))
                .collect();
            return Err(LowerError::TooLarge {
                value: t.name.clone(),
                bytes,
                limit,
                bounds: bounds.join(", "),
            });
        }
    }
    Ok(())
}

/// State while lowering one function.
pub(crate) struct LowerCx<'a> {
    pub model: &'a Model,
    pub func: &'a Function,
    pub target: &'a Target,
    tensors: Vec<TensorInfo>,
    steps: Vec<Step>,
    of_value: HashMap<ValueId, TensorId>,
    of_param: HashMap<(ParamId, Packing), TensorId>,
    /// The routing plans of the `grouped_matmul`s, by ids value, matrix count
    /// and block rows: one plan serves every product over the same ids (a
    /// Mixture-of-Transformers model plans its modality ids once).
    grouped_plans: HashMap<(ValueId, u32, u32), ops::Plan>,
    caches: Vec<LoweredCache>,
    /// The copy step of each cache.
    cache_copies: Vec<usize>,
    expert_layers: Vec<LoweredExperts>,
    collectives: Vec<LoweredCollective>,
}

/// A dim as a size expression.
pub(crate) fn dim_expr(d: &Dim) -> SizeExpr {
    match d {
        Dim::Static(n) => SizeExpr::Const(*n),
        Dim::Sym(s) => SizeExpr::Dim(s.clone()),
    }
}

/// The dims of a shape as size expressions.
pub(crate) fn dims_of(ty: &TensorType) -> Vec<SizeExpr> {
    ty.shape.dims().iter().map(dim_expr).collect()
}

/// A kernel dim: baked in when constant (and fitting 32 bits), dynamic otherwise.
pub(crate) fn kdim(e: &SizeExpr) -> seam_shaders::Dim {
    match e.as_const().and_then(|c| u32::try_from(c).ok()) {
        Some(c) => seam_shaders::Dim::Fixed(c),
        None => seam_shaders::Dim::Dynamic,
    }
}

impl<'a> LowerCx<'a> {
    fn add_tensor(&mut self, info: TensorInfo) -> TensorId {
        self.tensors.push(info);
        TensorId(self.tensors.len() - 1)
    }

    /// The tensor of an IR value (created on first use).
    pub fn value_tensor(&mut self, v: ValueId) -> TensorId {
        if let Some(&t) = self.of_value.get(&v) {
            return t;
        }
        let value = self.func.value(v);
        let t = self.add_tensor(TensorInfo {
            name: value.name.clone(),
            dtype: value.ty.dtype,
            elems: SizeExpr::product(dims_of(&value.ty)),
            source: Source::Value(v),
        });
        self.of_value.insert(v, t);
        t
    }

    /// Whether `o` is a state input of the function being lowered.
    pub fn is_state_input(&self, o: Operand) -> bool {
        match o {
            Operand::Value(v) => self
                .func
                .inputs
                .iter()
                .position(|&i| i == v)
                .is_some_and(|i| self.func.is_state_input(i)),
            Operand::Param(_) => false,
        }
    }

    /// Makes `v` share `t`'s storage (a reshape or an identity).
    pub fn alias(&mut self, v: ValueId, t: TensorId) {
        self.of_value.insert(v, t);
    }

    /// The tensor of a parameter packed as asked.
    pub fn param_tensor(&mut self, p: ParamId, packing: Packing) -> TensorId {
        if let Some(&t) = self.of_param.get(&(p, packing)) {
            return t;
        }
        let decl = self.model.param(p);
        let (dtype, elems) = match packing {
            // Row planes: `rows · row_words(K)` words.
            Packing::Rows(format) => {
                let sizes = decl.sizes();
                let (rows, k) = EncodedWeight::rows_and_k(&decl.name, &sizes).unwrap_or((0, 0));
                let words = format.row_words(k).and_then(|w| w.checked_mul(rows));
                (DType::U32, SizeExpr::Const(words.unwrap_or(0)))
            }
            _ => (decl.ty.dtype, SizeExpr::product(dims_of(&decl.ty))),
        };
        let t = self.add_tensor(TensorInfo {
            name: decl.name.clone(),
            dtype,
            elems,
            source: Source::Param(p, packing),
        });
        self.of_param.insert((p, packing), t);
        t
    }

    /// The tensor an operand reads, parameters unpacked.
    pub fn operand(&mut self, o: Operand) -> TensorId {
        match o {
            Operand::Value(v) => self.value_tensor(v),
            Operand::Param(p) => self.param_tensor(p, Packing::AsIs),
        }
    }

    /// Every operand of `instr` bound whole, in order, then its (first)
    /// result's tensor, which is also returned.
    pub fn operands_and_result(&mut self, instr: &Instr) -> (Vec<Arg>, TensorId) {
        let mut args: Vec<Arg> = instr
            .operands
            .iter()
            .map(|&o| whole(self.operand(o)))
            .collect();
        let out = self.value_tensor(instr.results[0]);
        args.push(whole(out));
        (args, out)
    }

    /// A scratch tensor.
    pub fn temp(&mut self, name: String, dtype: DType, elems: SizeExpr) -> TensorId {
        self.add_tensor(TensorInfo {
            name,
            dtype,
            elems,
            source: Source::Temp,
        })
    }

    /// The type of an operand.
    pub fn ty(&self, o: Operand) -> &'a TensorType {
        self.model.operand_type(self.func, o)
    }

    /// Appends a dispatch. `args` bind whole tensors in binding order; `writes`
    /// lists the written ones; `sizes` may name more sizes than the kernel has
    /// dynamic (only those are kept).
    pub fn step(
        &mut self,
        instr: &Instr,
        kernel: Result<Kernel, ShaderError>,
        args: Vec<Arg>,
        writes: Vec<TensorId>,
        sizes: Vec<(&str, SizeExpr)>,
    ) -> Result<(), LowerError> {
        let kernel = kernel.map_err(|error| LowerError::Shader {
            value: self.result_name(instr),
            error,
        })?;
        let mut kept = Vec::new();
        for s in kernel.sizes.iter().filter(|s| s.dim.fixed().is_none()) {
            let value = sizes
                .iter()
                .find(|(n, _)| *n == s.name)
                .map(|(_, e)| e.clone())
                .ok_or_else(|| LowerError::Shader {
                    value: self.result_name(instr),
                    error: ShaderError::config(
                        &kernel.name,
                        format!("size `{}` was not given", s.name),
                    ),
                })?;
            kept.push((s.name.clone(), value));
        }
        self.steps.push(Step {
            kernel,
            args,
            sizes: kept,
            writes,
            cache: None,
        });
        Ok(())
    }

    /// The name of the instruction's first result (for messages).
    pub fn result_name(&self, instr: &Instr) -> String {
        instr
            .results
            .first()
            .map(|&r| self.func.value(r).name.clone())
            .unwrap_or_default()
    }

    /// The kernel scalar type of an IR dtype (f16 has no kernels yet).
    pub fn scalar(&self, instr: &Instr, d: DType) -> Result<ScalarType, LowerError> {
        match d {
            DType::F32 => Ok(ScalarType::F32),
            DType::I32 => Ok(ScalarType::I32),
            DType::U32 => Ok(ScalarType::U32),
            DType::F16 => Err(self.unsupported(instr, "f16 tensors (compute in f32 for now)")),
        }
    }

    /// An unsupported-feature error for `instr`.
    pub fn unsupported(&self, instr: &Instr, reason: &str) -> LowerError {
        LowerError::Unsupported {
            op: instr.op.name(),
            value: self.result_name(instr),
            reason: reason.to_string(),
        }
    }
}

/// A whole-tensor argument.
pub(crate) fn whole(t: TensorId) -> Arg {
    Arg {
        tensor: t,
        offset: 0,
        size: None,
    }
}
