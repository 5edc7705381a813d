//! Element-wise kernels from a small expression language: unary and
//! broadcasting binary ops, `eq`, casts, constant fill and iota — and any fusion
//! of them (the compiler's fused element-wise e-nodes lower here).
//!
//! Each output element `i < n` evaluates [`Expr`] once; input `j` is read at an
//! index given by its [`IndexMap`] (same index, repeating suffix, outer
//! broadcast, scalar, or general strides over the output's dims). Bindings:
//! one read-only buffer per input (`in0`, `in1`, …), then `out`. Sizes: `n`;
//! `d0…` (output dims, when a strided map or iota needs them); per input `j`
//! `len{j}` (repeat), `div{j}` (outer) or `s{j}_{d}` (strides).

use crate::error::ShaderError;
use seam_core::DeviceLimits;
use seam_core::{BinaryFn, UnaryFn};
use seam_core::{Dim, Grid, Kernel};

use crate::wgsl::{size_ident, wgsl, KernelBuilder, ScalarType, WgslWriter, ACTIVATIONS};

/// An element-wise expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Input `j` at this element's index (per its [`IndexMap`]).
    Input(usize),
    /// A constant of the given dtype.
    Const(f64, ScalarType),
    /// The element's index along output axis `axis` (needs output dims), as the dtype.
    Iota(usize, ScalarType),
    /// A unary function (f32 only, except `neg` of `i32`).
    Unary(UnaryFn, Box<Expr>),
    /// A binary function of two operands of one dtype (integer division
    /// truncates; division by zero gives WGSL's result).
    Binary(BinaryFn, Box<Expr>, Box<Expr>),
    /// Conversion (float → int truncates toward zero and saturates — to
    /// 2147483520, the largest f32 below 2³¹, at the top, as WGSL defines).
    Cast(ScalarType, Box<Expr>),
}

impl Expr {
    /// `op(self)`.
    pub fn unary(op: UnaryFn, x: Expr) -> Expr {
        Expr::Unary(op, Box::new(x))
    }
    /// `op(a, b)`.
    pub fn binary(op: BinaryFn, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// Adds the unary functions the expression applies to `used`, each once.
    fn unary_fns(&self, used: &mut Vec<UnaryFn>) {
        match self {
            Expr::Input(_) | Expr::Const(..) | Expr::Iota(..) => {}
            Expr::Unary(op, x) => {
                if !used.contains(op) {
                    used.push(*op);
                }
                x.unary_fns(used);
            }
            Expr::Binary(_, a, b) => {
                a.unary_fns(used);
                b.unary_fns(used);
            }
            Expr::Cast(_, x) => x.unary_fns(used),
        }
    }
}

/// How input `j`'s index is derived from the output index `i`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexMap {
    /// `i` (same shape as the output).
    Same,
    /// `i % len` (the input is a suffix of the output's dims, e.g. a bias `[D]`
    /// against `[T, D]`). Size `len{j}`.
    Repeat(Dim),
    /// `i / div` (the input is a prefix, e.g. `[T, 1]` against `[T, D]`). Size `div{j}`.
    Outer(Dim),
    /// Index 0.
    Scalar,
    /// `Σ_d coord_d(i) · stride_d` over the output dims (general broadcasting
    /// and transposes; a stride of 0 broadcasts). Sizes `s{j}_{d}`.
    Strided(Vec<Dim>),
}

/// One input of an element-wise kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EwInput {
    /// Element type.
    pub dtype: ScalarType,
    /// Index map.
    pub map: IndexMap,
}

/// An element-wise kernel to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementwiseConfig {
    /// Name prefix (e.g. the op name).
    pub name: String,
    /// The inputs.
    pub inputs: Vec<EwInput>,
    /// What each output element is.
    pub expr: Expr,
    /// Output element type (must equal the expression's type).
    pub out: ScalarType,
    /// Output element count.
    pub n: Dim,
    /// Output dims (for strided maps and iota), outermost first.
    pub dims: Option<Vec<Dim>>,
    /// Invocations per workgroup.
    pub workgroup: u32,
}

impl ElementwiseConfig {
    /// A config with no inputs, dynamic `n`, and the device's default workgroup.
    pub fn new(name: &str, expr: Expr, out: ScalarType, limits: &DeviceLimits) -> Self {
        ElementwiseConfig {
            name: name.to_string(),
            inputs: Vec::new(),
            expr,
            out,
            n: Dim::Dynamic,
            dims: None,
            workgroup: limits.clamp_workgroup(256),
        }
    }

    /// Adds an input.
    pub fn input(mut self, dtype: ScalarType, map: IndexMap) -> Self {
        self.inputs.push(EwInput { dtype, map });
        self
    }
}

fn ty_of(cfg: &ElementwiseConfig, e: &Expr) -> Result<ScalarType, ShaderError> {
    let bad = |r: String| Err(ShaderError::config(&cfg.name, r));
    match e {
        Expr::Input(j) => match cfg.inputs.get(*j) {
            Some(inp) => Ok(inp.dtype),
            None => bad(format!("input {j} is not declared")),
        },
        Expr::Const(_, t) | Expr::Iota(_, t) | Expr::Cast(t, _) => {
            if let Expr::Cast(_, x) = e {
                ty_of(cfg, x)?;
            }
            Ok(*t)
        }
        Expr::Unary(op, x) => {
            let t = ty_of(cfg, x)?;
            if !op.takes_integers() && t != ScalarType::F32 {
                return bad(format!("{op:?} needs f32, found {t:?}"));
            }
            if op.takes_integers() && t == ScalarType::U32 {
                return bad("neg of u32".into());
            }
            Ok(t)
        }
        Expr::Binary(op, a, b) => {
            let (ta, tb) = (ty_of(cfg, a)?, ty_of(cfg, b)?);
            if ta != tb {
                return bad(format!("{op:?} of {ta:?} and {tb:?}"));
            }
            Ok(ta)
        }
    }
}

fn emit(e: &Expr, cfg: &ElementwiseConfig) -> Result<String, ShaderError> {
    Ok(match e {
        Expr::Input(j) => format!("v{j}"),
        Expr::Const(v, t) => t.literal(*v),
        Expr::Iota(axis, t) => {
            let dims = cfg
                .dims
                .as_ref()
                .ok_or_else(|| ShaderError::config(&cfg.name, "iota needs the output dims"))?;
            if *axis >= dims.len() {
                return Err(ShaderError::config(&cfg.name, "iota axis out of range"));
            }
            format!("{}(c{axis})", t.wgsl())
        }
        Expr::Unary(op, x) => op.wgsl(&emit(x, cfg)?),
        Expr::Binary(op, a, b) => {
            let t = ty_of(cfg, a)?;
            let (a, b) = (emit(a, cfg)?, emit(b, cfg)?);
            op.wgsl(&a, &b, &t.literal(0.0), &t.literal(1.0))
        }
        Expr::Cast(t, x) => format!("{}({})", t.wgsl(), emit(x, cfg)?),
    })
}

/// Generates an element-wise kernel.
pub fn elementwise(cfg: &ElementwiseConfig) -> Result<Kernel, ShaderError> {
    let t = ty_of(cfg, &cfg.expr)?;
    if t != cfg.out {
        return Err(ShaderError::config(
            &cfg.name,
            format!("expression is {t:?}, output {:?}", cfg.out),
        ));
    }
    let rank = cfg.dims.as_ref().map_or(0, Vec::len);
    for (j, inp) in cfg.inputs.iter().enumerate() {
        if let IndexMap::Strided(s) = &inp.map {
            if s.len() != rank {
                return Err(ShaderError::config(
                    &cfg.name,
                    format!("input {j} has {} strides for {rank} output dims", s.len()),
                ));
            }
        }
    }
    let mut kb = KernelBuilder::new(&cfg.name, cfg.workgroup.max(1));
    kb.size("n", cfg.n);
    if let Some(dims) = &cfg.dims {
        for (d, dim) in dims.iter().enumerate() {
            kb.size(&format!("d{d}"), *dim);
        }
    }
    for (j, inp) in cfg.inputs.iter().enumerate() {
        match &inp.map {
            IndexMap::Repeat(len) => {
                kb.size(&format!("len{j}"), *len);
            }
            IndexMap::Outer(div) => {
                kb.size(&format!("div{j}"), *div);
            }
            IndexMap::Strided(strides) => {
                for (d, s) in strides.iter().enumerate() {
                    kb.size(&format!("s{j}_{d}"), *s);
                }
            }
            IndexMap::Same | IndexMap::Scalar => {}
        }
        kb.input(&format!("in{j}"), inp.dtype);
    }
    kb.output("out", cfg.out);
    kb.item(ACTIVATIONS);
    let mut used = Vec::new();
    cfg.expr.unary_fns(&mut used);
    for helper in used.into_iter().filter_map(UnaryFn::wgsl_helper) {
        kb.item(helper);
    }

    let mut w = WgslWriter::new();
    wgsl!(w, "let i = group * {}u + lidx;", cfg.workgroup.max(1));
    w.line("if (i >= N) { return; }");
    if rank > 0 {
        w.line("var rest = i;");
        for d in (0..rank).rev() {
            let dim = size_ident(&format!("d{d}"));
            wgsl!(w, "let c{d} = rest % {dim};");
            wgsl!(w, "rest = rest / {dim};");
        }
    }
    for (j, inp) in cfg.inputs.iter().enumerate() {
        let idx = match &inp.map {
            IndexMap::Same => "i".to_string(),
            IndexMap::Repeat(_) => format!("i % {}", size_ident(&format!("len{j}"))),
            IndexMap::Outer(_) => format!("i / {}", size_ident(&format!("div{j}"))),
            IndexMap::Scalar => "0u".to_string(),
            IndexMap::Strided(strides) => {
                let terms: Vec<String> = (0..strides.len())
                    .map(|d| format!("c{d} * {}", size_ident(&format!("s{j}_{d}"))))
                    .collect();
                if terms.is_empty() {
                    "0u".into()
                } else {
                    terms.join(" + ")
                }
            }
        };
        wgsl!(w, "let v{j} = in{j}[{idx}];");
    }
    wgsl!(w, "out[i] = {};", emit(&cfg.expr, cfg)?);
    Ok(kb.finish(&w.finish(), Grid::linear(&["n"], cfg.workgroup.max(1))))
}

/// A unary function of one f32 input of the same shape.
pub fn unary(op: UnaryFn, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let cfg = ElementwiseConfig::new(
        &format!("unary_{op:?}").to_lowercase(),
        Expr::unary(op, Expr::Input(0)),
        ScalarType::F32,
        limits,
    )
    .input(ScalarType::F32, IndexMap::Same);
    elementwise(&cfg)
}

/// A binary function `a ∘ b` with `a` of the output's shape and `b` mapped by `b_map`
/// (`Same`, `Repeat` for a trailing-dims broadcast, `Scalar`, …).
pub fn binary(
    op: BinaryFn,
    dtype: ScalarType,
    b_map: IndexMap,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let cfg = ElementwiseConfig::new(
        &format!("binary_{op:?}_{}", dtype.wgsl()).to_lowercase(),
        Expr::binary(op, Expr::Input(0), Expr::Input(1)),
        dtype,
        limits,
    )
    .input(dtype, IndexMap::Same)
    .input(dtype, b_map);
    elementwise(&cfg)
}

/// Conversion of every element from `from` to `to`.
pub fn cast(
    from: ScalarType,
    to: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let cfg = ElementwiseConfig::new(
        &format!("cast_{}_{}", from.wgsl(), to.wgsl()),
        Expr::Cast(to, Box::new(Expr::Input(0))),
        to,
        limits,
    )
    .input(from, IndexMap::Same);
    elementwise(&cfg)
}

/// Fills the output with `value`.
pub fn fill(value: f64, dtype: ScalarType, limits: &DeviceLimits) -> Result<Kernel, ShaderError> {
    let cfg = ElementwiseConfig::new(
        &format!("fill_{}", dtype.wgsl()),
        Expr::Const(value, dtype),
        dtype,
        limits,
    );
    elementwise(&cfg)
}

/// `out[i] = i[axis]` over an output of `rank` dynamic dims (sizes `d0…`).
pub fn iota(
    axis: usize,
    rank: usize,
    dtype: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let mut cfg = ElementwiseConfig::new(
        &format!("iota_{}", dtype.wgsl()),
        Expr::Iota(axis, dtype),
        dtype,
        limits,
    );
    cfg.dims = Some(vec![Dim::Dynamic; rank]);
    elementwise(&cfg)
}

/// A transpose of a rank-`perm.len()` tensor as an element-wise copy with a
/// strided input: result dim `d` is operand dim `perm[d]`. All sizes dynamic:
/// use [`transpose_sizes`] to compute them.
pub fn transpose(
    perm: &[usize],
    dtype: ScalarType,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let mut seen = vec![false; perm.len()];
    for &p in perm {
        if p >= perm.len() || seen[p] {
            return Err(ShaderError::config(
                "transpose",
                format!("{perm:?} is not a permutation"),
            ));
        }
        seen[p] = true;
    }
    let rank = perm.len();
    let mut cfg = ElementwiseConfig::new(
        &format!("transpose_{}", dtype.wgsl()),
        Expr::Input(0),
        dtype,
        limits,
    )
    .input(dtype, IndexMap::Strided(vec![Dim::Dynamic; rank]));
    cfg.dims = Some(vec![Dim::Dynamic; rank]);
    elementwise(&cfg)
}

/// Launch sizes of [`transpose`] for an operand of shape `shape`.
pub fn transpose_sizes(shape: &[u32], perm: &[usize]) -> Vec<(String, u32)> {
    let rank = shape.len();
    let mut in_strides = vec![1u32; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let mut v = vec![("n".to_string(), shape.iter().product())];
    for (d, &p) in perm.iter().enumerate() {
        v.push((format!("d{d}"), shape[p]));
        v.push((format!("s0_{d}"), in_strides[p]));
    }
    v
}
