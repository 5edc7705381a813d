//! Seeded random well-typed models, for round-trip, optimizer and evaluator tests.
//!
//! ```ignore
//! #[path = "support/random_graph.rs"] // from ir/tests; from another crate's tests:
//! // #[path = "../../ir/tests/support/random_graph.rs"]
//! mod random_graph;
//!
//! let model = random_graph::random_model(7); // verified, deterministic per seed
//! ```
//!
//! Every model passes [`seam_ir::verify`]. Models mix symbolic dims (`tokens`,
//! `batch`, `seq`, `kv_len`) and static dims, f32 with occasional f16, and use
//! every op in [`seam_ir::op::op_names`] across a few hundred seeds
//! (elementwise, matmul, norms, softmax, reshape, transpose, concat, slice,
//! gather, rope, attention, write_rows, pooled_attention, topk, route, moe, all_reduce (and its start/wait), cache, ...).
//!
//! Integer tensors used as indices stay in range at run time, provided the
//! caller feeds integer function inputs with values in `0..VOCAB`: `gather`
//! tables have [`VOCAB`] rows and only read ids known to be below that, and
//! `moe` reads expert ids produced by a `route` over as many experts as it has.
//!
//! Value and param names exercise the text format's rules: dots, underscores,
//! and names starting with a digit (`%0`, `@3.bias`). Float attributes include
//! awkward values (`1e-5`, `1e300`, `5e-324`, `-0.0`, `inf`) but never NaN, so
//! models compare equal to themselves.

#![allow(dead_code)]

use std::collections::HashSet;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_ir::infer::infer;
use seam_ir::op::op_names;
use seam_ir::{
    verify, BinaryFn, DType, Dim, DimDecl, Function, GatedAct, Instr, Model, Op, Operand,
    ParamDecl, ParamId, RouteMode, Shape, TensorType, UnaryFn, ValueId,
};

/// Rows of every `gather` table; integer function inputs must hold ids below this.
pub const VOCAB: u64 = 64;

/// Slots of the pools `write_rows` and `pooled_attention` use.
const POOL_SLOTS: u64 = 2;

/// Positions per slot of those pools.
const POOL_LEN: u64 = 16;

/// Knobs of the generator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Functions per model: `1..=max_functions`.
    pub max_functions: usize,
    /// Generation steps per function (each emits one to four instructions).
    pub max_steps: usize,
    /// Whether some inputs are f16.
    pub f16: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_functions: 3,
            max_steps: 16,
            f16: true,
        }
    }
}

/// A random verified model, a pure function of `seed`.
pub fn random_model(seed: u64) -> Model {
    random_model_with(seed, &Config::default())
}

/// A random verified model with explicit knobs.
pub fn random_model_with(seed: u64, config: &Config) -> Model {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        model: Model::new(format!("random_{seed}")),
        names: 0,
        f16: config.f16,
    };
    let n_dims = g.rng.random_range(1..=4);
    for name in ["tokens", "batch", "seq", "kv_len"]
        .into_iter()
        .take(n_dims)
    {
        let max = *[1u64, 7, 64, 2048, 4096, u64::MAX]
            .choose(&mut g.rng)
            .unwrap_or(&2048);
        g.model.dims.push(DimDecl {
            name: name.to_string(),
            max,
        });
    }
    let n_funcs = g.rng.random_range(1..=config.max_functions.max(1));
    for fi in 0..n_funcs {
        let name = ["forward", "prefill", "decode", "encode.step"][fi % 4];
        let f = g.function(
            format!(
                "{name}{}",
                if fi < 4 {
                    String::new()
                } else {
                    fi.to_string()
                }
            ),
            config,
        );
        g.model.functions.push(f);
    }
    if let Err(e) = verify(&g.model) {
        panic!(
            "random_model({seed}) is invalid: {e} at {:?}\n{:#?}",
            e.location, g.model
        );
    }
    g.model
}

/// Names of the ops that `model` uses, for coverage checks.
pub fn ops_used(model: &Model) -> HashSet<&'static str> {
    model
        .functions
        .iter()
        .flat_map(|f| f.body.iter().map(|i| i.op.name()))
        .collect()
}

/// The ops the generator can emit (all of them).
pub fn generated_ops() -> Vec<&'static str> {
    op_names()
}

/// A value in the pool of a function under construction.
#[derive(Clone, Debug)]
struct Val {
    id: ValueId,
    ty: TensorType,
    /// An exclusive upper bound on the (non-negative) integers it holds, if known.
    id_bound: Option<u64>,
}

struct FnState {
    f: Function,
    pool: Vec<Val>,
    /// The token dim of this function.
    t: Dim,
}

struct Gen {
    rng: ChaCha8Rng,
    model: Model,
    names: u64,
    f16: bool,
}

const SMALL: [u64; 8] = [1, 2, 3, 4, 6, 8, 12, 16];
const EVEN: [u64; 4] = [2, 4, 8, 16];

impl Gen {
    fn fresh(&mut self) -> u64 {
        self.names += 1;
        self.names
    }

    fn value_name(&mut self) -> String {
        let n = self.fresh();
        match self.rng.random_range(0..5) {
            0 => format!("{n}"),
            1 => format!("v{n}"),
            2 => format!("x_{n}"),
            3 => format!("h.{n}.out"),
            _ => format!("_t{n}"),
        }
    }

    fn param_name(&mut self) -> String {
        let n = self.fresh();
        match self.rng.random_range(0..5) {
            0 => format!("w{n}"),
            1 => format!("layers.{n}.wq"),
            2 => format!("{n}.bias"),
            3 => format!("_p{n}"),
            _ => format!("embed{n}"),
        }
    }

    fn small(&mut self) -> u64 {
        *SMALL.choose(&mut self.rng).unwrap_or(&4)
    }

    fn float_dtype(&mut self) -> DType {
        if self.f16 && self.rng.random_bool(0.15) {
            DType::F16
        } else {
            DType::F32
        }
    }

    fn any_dtype(&mut self) -> DType {
        loop {
            let d = *DType::ALL.choose(&mut self.rng).unwrap_or(&DType::F32);
            if self.f16 || d != DType::F16 {
                return d;
            }
        }
    }

    fn sym_dim(&mut self) -> Option<Dim> {
        let names: Vec<String> = self.model.dims.iter().map(|d| d.name.clone()).collect();
        names.choose(&mut self.rng).map(|n| Dim::Sym(n.clone()))
    }

    /// A param of this static type: an existing one (sometimes) or a new one.
    fn param(&mut self, ty: TensorType) -> (Operand, TensorType) {
        let existing: Vec<usize> = (0..self.model.params.len())
            .filter(|&i| self.model.params[i].ty == ty)
            .collect();
        if !existing.is_empty() && self.rng.random_bool(0.4) {
            let i = *existing.choose(&mut self.rng).unwrap_or(&existing[0]);
            return (Operand::Param(ParamId(i as u32)), ty);
        }
        let name = self.param_name();
        self.model.params.push(ParamDecl::new(name, ty.clone()));
        (
            Operand::Param(ParamId(self.model.params.len() as u32 - 1)),
            ty,
        )
    }

    fn function(&mut self, name: String, config: &Config) -> Function {
        let t = if self.rng.random_bool(0.7) {
            self.sym_dim().unwrap_or(Dim::Static(4))
        } else {
            Dim::Static(self.small())
        };
        let mut s = FnState {
            f: Function::new(name),
            pool: Vec::new(),
            t: t.clone(),
        };
        let n_float = self.rng.random_range(1..=3);
        for _ in 0..n_float {
            let dt = self.float_dtype();
            let dims = match self.rng.random_range(0..4) {
                0 => vec![t.clone()],
                1 => vec![
                    t.clone(),
                    Dim::Static(self.small()),
                    Dim::Static(*EVEN.choose(&mut self.rng).unwrap_or(&4)),
                ],
                _ => vec![t.clone(), Dim::Static(self.small() * 2)],
            };
            self.input(
                &mut s,
                TensorType {
                    dtype: dt,
                    shape: Shape(dims),
                },
                None,
            );
        }
        for _ in 0..self.rng.random_range(0..=2) {
            let ty = TensorType {
                dtype: DType::I32,
                shape: Shape(vec![t.clone()]),
            };
            self.input(&mut s, ty, Some(VOCAB));
        }
        let names = op_names();
        let steps = self.rng.random_range(2..=config.max_steps.max(2));
        for _ in 0..steps {
            for _attempt in 0..8 {
                let op = *names.choose(&mut self.rng).unwrap_or(&"add");
                if self.step(&mut s, op) {
                    break;
                }
            }
        }
        // Return one to three distinct values, favouring recent ones.
        let n_out = self.rng.random_range(1..=3).min(s.pool.len());
        let mut candidates: Vec<ValueId> = s.pool.iter().rev().take(6).map(|v| v.id).collect();
        candidates.shuffle(&mut self.rng);
        s.f.outputs = candidates.into_iter().take(n_out).collect();
        s.f
    }

    fn input(&mut self, s: &mut FnState, ty: TensorType, id_bound: Option<u64>) {
        let name = self.value_name();
        let id = s.f.add_value(name, ty.clone());
        s.f.inputs.push(id);
        s.pool.push(Val { id, ty, id_bound });
    }

    /// Appends an instruction, inferring its result types (declared ones are used
    /// for `const`, `iota`, `reshape`, `cast`).
    fn emit(
        &mut self,
        s: &mut FnState,
        op: Op,
        operands: &[(Operand, TensorType)],
        declared: Option<TensorType>,
        id_bounds: &[Option<u64>],
    ) -> Vec<Val> {
        let types: Vec<&TensorType> = operands.iter().map(|(_, t)| t).collect();
        let placeholder = TensorType::new::<u64>(DType::F32, []);
        let decl: Vec<TensorType> = match declared {
            Some(t) => vec![t],
            None => vec![placeholder; op.num_results()],
        };
        let out = match infer(&op, &types, &decl) {
            Ok(out) => out,
            Err(e) => panic!(
                "generator emitted an ill-typed `{}`: {e}\noperands: {types:?}",
                op.name()
            ),
        };
        let mut results = Vec::new();
        let mut vals = Vec::new();
        for (i, ty) in out.into_iter().enumerate() {
            let name = self.value_name();
            let id = s.f.add_value(name, ty.clone());
            results.push(id);
            let v = Val {
                id,
                ty,
                id_bound: id_bounds.get(i).copied().flatten(),
            };
            s.pool.push(v.clone());
            vals.push(v);
        }
        s.f.body.push(Instr {
            op,
            operands: operands.iter().map(|(o, _)| *o).collect(),
            results,
        });
        vals
    }

    /// Slots and positions of `tokens` tokens in a pool: slot 0 at positions
    /// `0..tokens`, in range while `tokens <= POOL_LEN`.
    fn pool_rows(&mut self, s: &mut FnState, tokens: &Dim) -> [(Operand, TensorType); 2] {
        let ty = TensorType {
            dtype: DType::I32,
            shape: Shape(vec![tokens.clone()]),
        };
        let slot = self.emit(
            s,
            Op::Const { value: 0.0 },
            &[],
            Some(ty.clone()),
            &[Some(1)],
        );
        let bound = tokens.as_static();
        let pos = self.emit(s, Op::Iota { axis: 0 }, &[], Some(ty), &[bound]);
        [slot, pos].map(|v| (Operand::Value(v[0].id), v[0].ty.clone()))
    }

    fn pick(&mut self, s: &FnState, ok: impl Fn(&Val) -> bool) -> Option<Val> {
        let c: Vec<&Val> = s.pool.iter().filter(|v| ok(v)).collect();
        c.choose(&mut self.rng).map(|v| (*v).clone())
    }

    /// An operand of exactly `ty`: another pool value of that type or `v` itself.
    fn same_type(&mut self, s: &FnState, v: &Val) -> (Operand, TensorType) {
        let o = self.pick(s, |w| w.ty == v.ty).unwrap_or_else(|| v.clone());
        (Operand::Value(o.id), o.ty)
    }

    fn random_f64(&mut self) -> f64 {
        let specials = [
            0.0,
            -0.0,
            0.5,
            1e-5,
            1e300,
            5e-324,
            -2.0,
            1.0 / 3.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e16,
            123456789.0,
        ];
        if self.rng.random_bool(0.6) {
            *specials.choose(&mut self.rng).unwrap_or(&0.5)
        } else {
            loop {
                let v = f64::from_bits(self.rng.random());
                if !v.is_nan() {
                    return v;
                }
            }
        }
    }

    fn random_f32(&mut self) -> f32 {
        let specials = [
            1e-5f32,
            1e-6,
            10000.0,
            500000.0,
            0.125,
            f32::MIN_POSITIVE,
            1e-45,
            -0.0,
            3.4e38,
        ];
        if self.rng.random_bool(0.6) {
            *specials.choose(&mut self.rng).unwrap_or(&1e-5)
        } else {
            loop {
                let v = f32::from_bits(self.rng.random());
                if v.is_finite() {
                    return v;
                }
            }
        }
    }

    fn random_string(&mut self) -> String {
        let pieces = [
            "enc",
            "kv",
            "\"q\"",
            "a\\b",
            "line\nbreak",
            "tab\t",
            "é",
            "\u{1F600}",
            "\u{0}",
            "\u{301}",
            " ",
            ".",
            "x",
        ];
        let n = self.rng.random_range(0..4);
        (0..n)
            .map(|_| *pieces.choose(&mut self.rng).unwrap_or(&"x"))
            .collect()
    }

    /// Tries to emit one `op` (plus any instructions it needs); false if the
    /// pool has nothing suitable.
    fn step(&mut self, s: &mut FnState, op: &str) -> bool {
        let float = |v: &Val| v.ty.dtype.is_float();
        let static_last = |v: &Val| {
            v.ty.shape
                .last()
                .and_then(Dim::as_static)
                .is_some_and(|n| n >= 1)
        };
        match op {
            "const" => {
                let dtype = self.any_dtype();
                let dims = match self.rng.random_range(0..3) {
                    0 => vec![],
                    1 => vec![Dim::Static(self.small())],
                    _ => vec![s.t.clone(), Dim::Static(self.small())],
                };
                let value = self.random_f64();
                let ty = TensorType {
                    dtype,
                    shape: Shape(dims),
                };
                self.emit(s, Op::Const { value }, &[], Some(ty), &[None]);
                true
            }
            "iota" => {
                let dtype = if self.rng.random_bool(0.8) {
                    DType::I32
                } else {
                    DType::U32
                };
                let dims = if self.rng.random_bool(0.5) {
                    vec![s.t.clone()]
                } else {
                    vec![s.t.clone(), Dim::Static(self.small())]
                };
                let axis = self.rng.random_range(0..dims.len());
                let bound = dims[axis].as_static();
                let ty = TensorType {
                    dtype,
                    shape: Shape(dims),
                };
                self.emit(s, Op::Iota { axis }, &[], Some(ty), &[bound]);
                true
            }
            "matmul" => {
                let Some(a) = self.pick(s, |v| float(v) && v.ty.rank() >= 2 && static_last(v))
                else {
                    return false;
                };
                let dims = a.ty.shape.dims().to_vec();
                let k = dims[dims.len() - 1].clone();
                if self.rng.random_bool(0.3) {
                    // Batched: a × transpose(a) over the last two dims.
                    let mut perm: Vec<usize> = (0..dims.len()).collect();
                    let r = perm.len();
                    perm.swap(r - 1, r - 2);
                    let at = self.emit(
                        s,
                        Op::Transpose { perm },
                        &[(Operand::Value(a.id), a.ty.clone())],
                        None,
                        &[],
                    );
                    let at = &at[0];
                    self.emit(
                        s,
                        Op::MatMul,
                        &[
                            (Operand::Value(a.id), a.ty.clone()),
                            (Operand::Value(at.id), at.ty.clone()),
                        ],
                        None,
                        &[],
                    );
                } else {
                    let n = self.small() * 2;
                    let b = self.param(TensorType {
                        dtype: a.ty.dtype,
                        shape: Shape(vec![k, Dim::Static(n)]),
                    });
                    self.emit(
                        s,
                        Op::MatMul,
                        &[(Operand::Value(a.id), a.ty.clone()), b],
                        None,
                        &[],
                    );
                }
                true
            }
            "gated_matmul" | "matmul_add" => {
                let Some(a) = self.pick(s, |v| float(v) && v.ty.rank() >= 2 && static_last(v))
                else {
                    return false;
                };
                let dims = a.ty.shape.dims().to_vec();
                let k = dims[dims.len() - 1].clone();
                // A residual needs the product's shape: n = k, added to `a` itself.
                let residual = op == "matmul_add" && self.rng.random_bool(0.5);
                let n = if residual {
                    k.clone()
                } else {
                    Dim::Static(self.small() * 2)
                };
                let wty = TensorType {
                    dtype: a.ty.dtype,
                    shape: Shape(vec![k, n.clone()]),
                };
                let w = self.param(wty.clone());
                let aop = (Operand::Value(a.id), a.ty.clone());
                let (op, third) = if op == "gated_matmul" {
                    let act = if self.rng.random_bool(0.5) {
                        GatedAct::SwiGlu
                    } else {
                        GatedAct::GeGlu
                    };
                    (Op::GatedMatMul { act }, self.param(wty))
                } else if residual {
                    (Op::MatMulAdd, aop.clone())
                } else {
                    let bias = self.param(TensorType {
                        dtype: a.ty.dtype,
                        shape: Shape(vec![n]),
                    });
                    (Op::MatMulAdd, bias)
                };
                self.emit(s, op, &[aop, w, third], None, &[]);
                true
            }
            "fused" => {
                let Some(a) = self.pick(s, |v| float(v)) else {
                    return false;
                };
                let aop = (Operand::Value(a.id), a.ty.clone());
                let (text, operands) = match self.rng.random_range(0..3) {
                    0 => ("tanh(mul($0, 0.5))", vec![aop]),
                    1 => ("add(mul(silu($0), $1), -1.25)", vec![aop.clone(), aop]),
                    _ => {
                        let b = self.same_type(s, &a);
                        ("div(exp(neg($1)), add(1.5, sigmoid($0)))", vec![aop, b])
                    }
                };
                let expr = seam_ir::FusedExpr::parse(text).expect("a valid expression");
                self.emit(s, Op::Fused { expr }, &operands, None, &[]);
                true
            }
            name if BinaryFn::from_name(name).is_some() => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let bop = match self.rng.random_range(0..4) {
                    0 => (Operand::Value(a.id), a.ty.clone()),
                    1 => self.same_type(s, &a),
                    2 => {
                        // A param of a static suffix of a's shape (broadcast).
                        let dims = a.ty.shape.dims();
                        let mut n = 0;
                        while n < dims.len() && dims[dims.len() - 1 - n].as_static().is_some() {
                            n += 1;
                        }
                        let take = self.rng.random_range(0..=n);
                        let suffix = dims[dims.len() - take..].to_vec();
                        if take == 0 {
                            self.same_type(s, &a)
                        } else {
                            self.param(TensorType {
                                dtype: a.ty.dtype,
                                shape: Shape(suffix),
                            })
                        }
                    }
                    _ => {
                        let c = self.emit(
                            s,
                            Op::Const { value: 2.0 },
                            &[],
                            Some(TensorType::new::<u64>(a.ty.dtype, [])),
                            &[None],
                        );
                        (Operand::Value(c[0].id), c[0].ty.clone())
                    }
                };
                let aop = (Operand::Value(a.id), a.ty.clone());
                let (x, y) = if self.rng.random_bool(0.5) {
                    (aop, bop)
                } else {
                    (bop, aop)
                };
                let op = Op::Binary(BinaryFn::from_name(op).unwrap_or(BinaryFn::Eq));
                self.emit(s, op, &[x, y], None, &[]);
                true
            }
            name if name == "softmax" || UnaryFn::ALL.iter().any(|f| f.op_name() == name) => {
                // The functions of this op name (`gelu` has two, picked by `approx`).
                let fns: Vec<UnaryFn> = UnaryFn::ALL
                    .iter()
                    .copied()
                    .filter(|f| f.op_name() == name)
                    .collect();
                let need_float = !fns.first().is_some_and(|f| f.takes_integers());
                let need_rank = name == "softmax";
                let Some(a) = self.pick(s, |v| {
                    (!need_float || float(v)) && (!need_rank || v.ty.rank() >= 1)
                }) else {
                    return false;
                };
                let op = match fns.choose(&mut self.rng) {
                    Some(&f) => Op::Unary(f),
                    None => Op::Softmax,
                };
                self.emit(s, op, &[(Operand::Value(a.id), a.ty)], None, &[]);
                true
            }
            "cast" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let to = self.any_dtype();
                let ty = TensorType {
                    dtype: to,
                    shape: a.ty.shape.clone(),
                };
                self.emit(
                    s,
                    Op::Cast,
                    &[(Operand::Value(a.id), a.ty)],
                    Some(ty),
                    &[None],
                );
                true
            }
            "rms_norm" | "layer_norm" => {
                let Some(a) = self.pick(s, |v| float(v) && static_last(v)) else {
                    return false;
                };
                let d = a.ty.shape.last().cloned().unwrap_or(Dim::Static(1));
                let wty = TensorType {
                    dtype: a.ty.dtype,
                    shape: Shape(vec![d]),
                };
                let eps = self.random_f32();
                let mut ops = vec![
                    (Operand::Value(a.id), a.ty.clone()),
                    self.param(wty.clone()),
                ];
                let op = if op == "rms_norm" {
                    Op::RmsNorm { eps }
                } else {
                    ops.push(self.param(wty));
                    Op::LayerNorm { eps }
                };
                self.emit(s, op, &ops, None, &[]);
                true
            }
            "reduce_sum" => {
                let Some(a) = self.pick(s, |v| v.ty.rank() >= 1) else {
                    return false;
                };
                self.emit(s, Op::ReduceSum, &[(Operand::Value(a.id), a.ty)], None, &[]);
                true
            }
            "reshape" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let ty = self.reshaped(&a.ty);
                self.emit(
                    s,
                    Op::Reshape,
                    &[(Operand::Value(a.id), a.ty)],
                    Some(ty),
                    &[a.id_bound],
                );
                true
            }
            "transpose" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let mut perm: Vec<usize> = (0..a.ty.rank()).collect();
                perm.shuffle(&mut self.rng);
                self.emit(
                    s,
                    Op::Transpose { perm },
                    &[(Operand::Value(a.id), a.ty)],
                    None,
                    &[a.id_bound],
                );
                true
            }
            "concat" => {
                let Some(a) = self.pick(s, |v| {
                    v.ty.shape.dims().iter().any(|d| d.as_static().is_some())
                }) else {
                    return false;
                };
                let axes: Vec<usize> = (0..a.ty.rank())
                    .filter(|&i| a.ty.shape.dims()[i].as_static().is_some())
                    .collect();
                let axis = *axes.choose(&mut self.rng).unwrap_or(&0);
                let n = self.rng.random_range(1..=3);
                let mut ops = vec![(Operand::Value(a.id), a.ty.clone())];
                for _ in 1..n {
                    let o = self.same_type(s, &a);
                    ops.push(o);
                }
                self.emit(s, Op::Concat { axis }, &ops, None, &[]);
                true
            }
            "slice" => {
                let Some(a) = self.pick(s, |v| {
                    v.ty.shape
                        .dims()
                        .iter()
                        .any(|d| d.as_static().is_some_and(|n| n >= 1))
                }) else {
                    return false;
                };
                let axes: Vec<usize> = (0..a.ty.rank())
                    .filter(|&i| a.ty.shape.dims()[i].as_static().is_some_and(|n| n >= 1))
                    .collect();
                let axis = *axes.choose(&mut self.rng).unwrap_or(&0);
                let n = a.ty.shape.dims()[axis].as_static().unwrap_or(1);
                let start = self.rng.random_range(0..n);
                let end = self.rng.random_range(start + 1..=n);
                self.emit(
                    s,
                    Op::Slice { axis, start, end },
                    &[(Operand::Value(a.id), a.ty)],
                    None,
                    &[a.id_bound],
                );
                true
            }
            "tail" => {
                let Some(a) = self.pick(s, |v| {
                    v.ty.shape
                        .dims()
                        .first()
                        .and_then(Dim::as_static)
                        .is_some_and(|n| n >= 1)
                }) else {
                    return false;
                };
                let n = a.ty.shape.dims()[0].as_static().unwrap_or(1);
                let mut ty = a.ty.clone();
                ty.shape.0[0] = Dim::Static(self.rng.random_range(1..=n));
                self.emit(
                    s,
                    Op::Tail,
                    &[(Operand::Value(a.id), a.ty)],
                    Some(ty),
                    &[a.id_bound],
                );
                true
            }
            "write_tail" => {
                let Some(buf) = self.pick(s, |v| {
                    v.ty.shape
                        .dims()
                        .first()
                        .and_then(Dim::as_static)
                        .is_some_and(|n| n >= 1)
                }) else {
                    return false;
                };
                let rows = buf.ty.shape.dims()[0].as_static().unwrap_or(1);
                // Rows to write: a value with the buffer's trailing dims and no
                // more rows, or the buffer itself.
                let new = self
                    .pick(s, |v| {
                        v.ty.dtype == buf.ty.dtype
                            && v.ty.rank() == buf.ty.rank()
                            && v.ty.shape.dims()[1..] == buf.ty.shape.dims()[1..]
                            && v.ty.shape.dims()[0].as_static().is_some_and(|n| n <= rows)
                    })
                    .unwrap_or_else(|| buf.clone());
                let bound = buf.id_bound.zip(new.id_bound).map(|(a, b)| a.max(b));
                self.emit(
                    s,
                    Op::WriteTail,
                    &[
                        (Operand::Value(buf.id), buf.ty.clone()),
                        (Operand::Value(new.id), new.ty),
                    ],
                    None,
                    &[bound],
                );
                true
            }
            "write_rows" => {
                let Some(new) = self.pick(s, |v| {
                    v.ty.dtype.is_float()
                        && v.ty.rank() >= 1
                        && v.ty.shape.dims()[1..]
                            .iter()
                            .all(|d| d.as_static().is_some())
                }) else {
                    return false;
                };
                let mut pool = vec![Dim::Static(POOL_SLOTS), Dim::Static(POOL_LEN)];
                pool.extend(new.ty.shape.dims()[1..].iter().cloned());
                let buf = self.param(TensorType {
                    dtype: new.ty.dtype,
                    shape: Shape(pool),
                });
                let [slot, pos] = self.pool_rows(s, &new.ty.shape.dims()[0]);
                let new = (Operand::Value(new.id), new.ty);
                self.emit(s, Op::WriteRows, &[buf, slot, pos, new], None, &[]);
                true
            }
            "pooled_attention" => {
                let Some(q) = self.rank3(s, false) else {
                    return false;
                };
                let d = q.ty.shape.dims();
                let h = d[1].as_static().unwrap_or(1);
                let divisors: Vec<u64> = (1..=h).filter(|x| h % x == 0).collect();
                let hkv = *divisors.choose(&mut self.rng).unwrap_or(&h);
                let pool = TensorType {
                    dtype: q.ty.dtype,
                    shape: Shape(vec![
                        Dim::Static(POOL_SLOTS),
                        Dim::Static(POOL_LEN),
                        Dim::Static(hkv),
                        d[2].clone(),
                    ]),
                };
                let (k, v) = (self.param(pool.clone()), self.param(pool));
                let [slot, pos] = self.pool_rows(s, &d[0]);
                let scale = if self.rng.random_bool(0.5) {
                    Some(self.random_f32())
                } else {
                    None
                };
                let q = (Operand::Value(q.id), q.ty);
                self.emit(
                    s,
                    Op::PooledAttention { scale },
                    &[q, k, v, slot, pos],
                    None,
                    &[],
                );
                true
            }
            "gather" => {
                let Some(ids) = self.pick(s, |v| {
                    v.ty.dtype.is_int() && v.id_bound.is_some_and(|b| b <= VOCAB)
                }) else {
                    return false;
                };
                let dt = self.float_dtype();
                let d = self.small() * 2;
                let table = self.param(TensorType::new(dt, [VOCAB, d]));
                self.emit(
                    s,
                    Op::Gather,
                    &[table, (Operand::Value(ids.id), ids.ty)],
                    None,
                    &[],
                );
                true
            }
            "rope" => {
                let Some(x) = self.rank3(s, true) else {
                    return false;
                };
                let t0 = x.ty.shape.dims()[0].clone();
                let pos = match self.pick(s, |v| {
                    v.ty.dtype.is_int() && v.ty.shape.dims() == [t0.clone()]
                }) {
                    Some(p) => p,
                    None => {
                        let ty = TensorType {
                            dtype: DType::I32,
                            shape: Shape(vec![t0.clone()]),
                        };
                        let bound = t0.as_static();
                        self.emit(s, Op::Iota { axis: 0 }, &[], Some(ty), &[bound])
                            .remove(0)
                    }
                };
                let theta = self.random_f32();
                self.emit(
                    s,
                    Op::Rope { theta },
                    &[
                        (Operand::Value(x.id), x.ty),
                        (Operand::Value(pos.id), pos.ty),
                    ],
                    None,
                    &[],
                );
                true
            }
            "attention" => {
                let Some(q) = self.rank3(s, false) else {
                    return false;
                };
                let h = q.ty.shape.dims()[1].as_static().unwrap_or(1);
                let divisors: Vec<u64> = (1..=h).filter(|d| h % d == 0).collect();
                let hkv = *divisors.choose(&mut self.rng).unwrap_or(&h);
                let qo = (Operand::Value(q.id), q.ty.clone());
                let (k, v) = if hkv == h {
                    (self.same_type(s, &q), self.same_type(s, &q))
                } else {
                    let kv = self
                        .emit(
                            s,
                            Op::Slice {
                                axis: 1,
                                start: 0,
                                end: hkv,
                            },
                            std::slice::from_ref(&qo),
                            None,
                            &[],
                        )
                        .remove(0);
                    (
                        (Operand::Value(kv.id), kv.ty.clone()),
                        (Operand::Value(kv.id), kv.ty),
                    )
                };
                let causal = self.rng.random_bool(0.5);
                let scale = if self.rng.random_bool(0.5) {
                    Some(self.random_f32())
                } else {
                    None
                };
                self.emit(s, Op::Attention { causal, scale }, &[qo, k, v], None, &[]);
                true
            }
            "topk" => {
                let Some(a) = self.pick(s, |v| static_last(v)) else {
                    return false;
                };
                let n = a.ty.shape.last().and_then(Dim::as_static).unwrap_or(1);
                let k = self.rng.random_range(1..=n.min(8)) as usize;
                self.emit(
                    s,
                    Op::TopK { k },
                    &[(Operand::Value(a.id), a.ty)],
                    None,
                    &[None, Some(n)],
                );
                true
            }
            "route" => {
                let Some(x) = self.pick(s, |v| float(v) && v.ty.rank() == 2 && static_last(v))
                else {
                    return false;
                };
                self.route(s, &x).is_some()
            }
            "moe" => {
                let Some(x) = self.pick(s, |v| float(v) && v.ty.rank() == 2 && static_last(v))
                else {
                    return false;
                };
                let Some((ids, weights, e)) = self.route(s, &x) else {
                    return false;
                };
                let d = x.ty.shape.dims()[1].clone();
                let f = Dim::Static(self.small() * 2);
                let dt = x.ty.dtype;
                let mut ops = vec![
                    (Operand::Value(x.id), x.ty.clone()),
                    (Operand::Value(ids.id), ids.ty),
                    (Operand::Value(weights.id), weights.ty),
                    self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![Dim::Static(e), d.clone(), f.clone()]),
                    }),
                    self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![Dim::Static(e), d.clone(), f.clone()]),
                    }),
                    self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![Dim::Static(e), f, d.clone()]),
                    }),
                ];
                if self.rng.random_bool(0.5) {
                    let fs = Dim::Static(self.small());
                    ops.push(self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![d.clone(), fs.clone()]),
                    }));
                    ops.push(self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![d.clone(), fs.clone()]),
                    }));
                    ops.push(self.param(TensorType {
                        dtype: dt,
                        shape: Shape(vec![fs, d]),
                    }));
                }
                let act = if self.rng.random_bool(0.5) {
                    GatedAct::SwiGlu
                } else {
                    GatedAct::GeGlu
                };
                self.emit(s, Op::Moe { act }, &ops, None, &[]);
                true
            }
            "grouped_matmul" => {
                let Some(x) = self.pick(s, |v| float(v) && v.ty.rank() == 2) else {
                    return false;
                };
                let rows = x.ty.shape.dims()[0].clone();
                let Some(ids) = self.pick(s, |v| {
                    v.ty.dtype == DType::I32
                        && v.ty.shape.dims() == [rows.clone()]
                        && v.id_bound.is_some_and(|b| (1..=8).contains(&b))
                }) else {
                    return false;
                };
                let e = ids.id_bound.unwrap_or(1);
                let k = x.ty.shape.dims()[1].clone();
                let n = Dim::Static(self.small());
                let w = self.param(TensorType {
                    dtype: x.ty.dtype,
                    shape: Shape(vec![Dim::Static(e), k, n]),
                });
                let operands = [
                    (Operand::Value(x.id), x.ty),
                    (Operand::Value(ids.id), ids.ty),
                    w,
                ];
                self.emit(s, Op::GroupedMatMul, &operands, None, &[]);
                true
            }
            "all_reduce" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let reduce = seam_ir::ReduceOp::Sum;
                self.emit(
                    s,
                    Op::AllReduce { reduce },
                    &[(Operand::Value(a.id), a.ty)],
                    None,
                    &[a.id_bound],
                );
                true
            }
            "all_reduce_start" | "all_reduce_wait" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let op = if op == "all_reduce_start" {
                    Op::AllReduceStart {
                        reduce: seam_ir::ReduceOp::Sum,
                    }
                } else {
                    Op::AllReduceWait
                };
                self.emit(s, op, &[(Operand::Value(a.id), a.ty)], None, &[a.id_bound]);
                true
            }
            "cache" => {
                let Some(a) = self.pick(s, |_| true) else {
                    return false;
                };
                let key = self.random_string();
                let refresh = *[0u32, 1, 4, u32::MAX].choose(&mut self.rng).unwrap_or(&1);
                self.emit(
                    s,
                    Op::Cache { key, refresh },
                    &[(Operand::Value(a.id), a.ty)],
                    None,
                    &[a.id_bound],
                );
                true
            }
            _ => false,
        }
    }

    /// Router logits `x·W` over a random number of experts, then `route`:
    /// returns (ids, weights, experts).
    fn route(&mut self, s: &mut FnState, x: &Val) -> Option<(Val, Val, u64)> {
        let d = x.ty.shape.dims()[1].clone();
        let e = self.rng.random_range(2..=8u64);
        let w = self.param(TensorType {
            dtype: x.ty.dtype,
            shape: Shape(vec![d, Dim::Static(e)]),
        });
        let logits = self
            .emit(
                s,
                Op::MatMul,
                &[(Operand::Value(x.id), x.ty.clone()), w],
                None,
                &[],
            )
            .remove(0);
        let k = self.rng.random_range(1..=e.min(4)) as usize;
        let mode = *[
            RouteMode::SoftmaxTopk,
            RouteMode::TopkSoftmax,
            RouteMode::Take,
        ]
        .choose(&mut self.rng)
        .unwrap_or(&RouteMode::SoftmaxTopk);
        let renorm = mode == RouteMode::SoftmaxTopk && self.rng.random_bool(0.5);
        let lo = (Operand::Value(logits.id), logits.ty.clone());
        let mut ops = vec![lo.clone()];
        if mode == RouteMode::Take {
            let scores = self
                .emit(s, Op::Unary(UnaryFn::Sigmoid), &[lo], None, &[])
                .remove(0);
            ops.push((Operand::Value(scores.id), scores.ty));
        }
        let mut out = self.emit(
            s,
            Op::Route { k, mode, renorm },
            &ops,
            None,
            &[Some(e), None],
        );
        let weights = out.pop()?;
        let ids = out.pop()?;
        Some((ids, weights, e))
    }

    /// A float `[T, H, Dh]` value with static `H` (and even `Dh` if `even`):
    /// an existing one or a reshape of a `[T, D]` one.
    fn rank3(&mut self, s: &mut FnState, even: bool) -> Option<Val> {
        let ok = |v: &Val| {
            let d = v.ty.shape.dims();
            v.ty.dtype.is_float()
                && d.len() == 3
                && d[1].as_static().is_some_and(|h| h >= 1)
                && d[2]
                    .as_static()
                    .is_some_and(|x| x >= 1 && (!even || x % 2 == 0))
        };
        if let Some(v) = self.pick(s, ok) {
            if self.rng.random_bool(0.6) {
                return Some(v);
            }
        }
        let src = self.pick(s, |v| {
            let d = v.ty.shape.dims();
            v.ty.dtype.is_float()
                && d.len() == 2
                && d[1].as_static().is_some_and(|n| n >= 2 && n % 2 == 0)
        })?;
        let dims = src.ty.shape.dims();
        let n = dims[1].as_static().unwrap_or(2);
        // Split D into H × Dh with Dh even.
        let hs: Vec<u64> = (1..=n).filter(|h| n % h == 0 && (n / h) % 2 == 0).collect();
        let h = *hs.choose(&mut self.rng)?;
        let ty = TensorType {
            dtype: src.ty.dtype,
            shape: Shape(vec![dims[0].clone(), Dim::Static(h), Dim::Static(n / h)]),
        };
        Some(
            self.emit(
                s,
                Op::Reshape,
                &[(Operand::Value(src.id), src.ty.clone())],
                Some(ty),
                &[None],
            )
            .remove(0),
        )
    }

    /// A shape with the same element count: the symbolic dims in random order
    /// and the static product split into random factors.
    fn reshaped(&mut self, ty: &TensorType) -> TensorType {
        let (mut product, syms) = ty.shape.element_count_parts();
        let mut dims: Vec<Dim> = syms.into_iter().map(|s| Dim::Sym(s.to_string())).collect();
        while product > 1 && self.rng.random_bool(0.7) {
            let divisors: Vec<u64> = (2..=product.min(64)).filter(|d| product % d == 0).collect();
            let Some(&d) = divisors.choose(&mut self.rng) else {
                break;
            };
            dims.push(Dim::Static(d));
            product /= d;
        }
        if product > 1 || self.rng.random_bool(0.2) {
            dims.push(Dim::Static(product));
        }
        dims.shuffle(&mut self.rng);
        TensorType {
            dtype: ty.dtype,
            shape: Shape(dims),
        }
    }
}
