//! The dense expansion of `moe`: the definition of the op.
//!
//! [`expand_moe`] replaces one
//! `%y = moe(%x, %ids, %weights, w_gate, w_up, w_down [, s_gate, s_up, s_down], act=A)`
//! of type `X[T, D]` (with `w_gate: [E, D, F]`, ids of integer type `I`) by dense
//! instructions only. For each expert `e` in `0..E`, in order, it emits this block
//! (names are `%{y}_e{e}_…`; a `_N` suffix is added if a name is taken):
//!
//! ```text
//! %y_e0_wg    = slice(w_gate, axis=0, start=e, end=e+1) : X[1, D, F]
//! %y_e0_gate  = reshape(%y_e0_wg)                       : X[D, F]
//! %y_e0_wu    = slice(w_up, axis=0, start=e, end=e+1)   : X[1, D, F]
//! %y_e0_up    = reshape(%y_e0_wu)                       : X[D, F]
//! %y_e0_wd    = slice(w_down, axis=0, start=e, end=e+1) : X[1, F, D]
//! %y_e0_down  = reshape(%y_e0_wd)                       : X[F, D]
//! %y_e0_id    = const(value=e)                          : I[]
//! %y_e0_hit   = eq(%ids, %y_e0_id)                      : I[T, k]
//! %y_e0_hitf  = cast(%y_e0_hit)                         : X[T, k]
//! %y_e0_wk    = mul(%y_e0_hitf, %weights)               : X[T, k]
//! %y_e0_wsum  = reduce_sum(%y_e0_wk)                    : X[T]
//! %y_e0_scale = reshape(%y_e0_wsum)                     : X[T, 1]
//! %y_e0_gx    = matmul(%x, %y_e0_gate)                  : X[T, F]
//! %y_e0_ux    = matmul(%x, %y_e0_up)                    : X[T, F]
//! %y_e0_act   = silu(%y_e0_gx)   (geglu: gelu(approx=erf)) : X[T, F]
//! %y_e0_h     = mul(%y_e0_act, %y_e0_ux)                : X[T, F]
//! %y_e0_dx    = matmul(%y_e0_h, %y_e0_down)             : X[T, D]
//! %y_e0_out   = mul(%y_e0_dx, %y_e0_scale)              : X[T, D]
//! %y_e1_sum   = add(%y_e0_out, %y_e1_out)               (for e ≥ 1: previous sum + this out)
//! ```
//!
//! With a shared expert it then emits `%y_s_gx = matmul(%x, s_gate)`,
//! `%y_s_ux = matmul(%x, s_up)`, `%y_s_act = silu|gelu(%y_s_gx)`,
//! `%y_s_h = mul(%y_s_act, %y_s_ux)`, `%y_s_out = matmul(%y_s_h, s_down)` and
//! `add(sum, %y_s_out)`. The last instruction emitted defines `%y` itself (same
//! value id and name), so every use of the moe result is untouched.
//!
//! The per-expert scale is `Σ_j [ids[t, j] = e] · weights[t, j]`, so a token that
//! selects an expert twice gets the sum of both weights, and an id outside `0..E`
//! selects nothing (the evaluator's direct `moe` rejects such ids instead).

use std::collections::HashSet;

use thiserror::Error;

use crate::infer::{infer, TypeError};
use crate::model::{Function, Instr, Model, Operand};
use crate::op::{BinaryFn, GatedAct, Op, UnaryFn};
use crate::shape::{Dim, Shape, TensorType};
use crate::verify::{verify, VerifyError};
use crate::DType;

/// The element-wise ops the expansion emits.
const ADD: Op = Op::Binary(BinaryFn::Add);
const MUL: Op = Op::Binary(BinaryFn::Mul);
const EQ: Op = Op::Binary(BinaryFn::Eq);

/// Why a `moe` could not be expanded.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExpandError {
    /// The model (before or after expansion) does not verify.
    #[error("the model does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// The instruction index is past the end of the body.
    #[error("function `{function}` has no instruction {index}")]
    NoInstr {
        /// The function.
        function: String,
        /// The index given.
        index: usize,
    },
    /// The instruction is not a `moe`.
    #[error("instruction {index} of `{function}` is `{op}`, not `moe`")]
    NotMoe {
        /// The function.
        function: String,
        /// The index given.
        index: usize,
        /// Its op.
        op: &'static str,
    },
    /// The number of experts is symbolic, so the per-expert blocks cannot be unrolled.
    #[error("`moe` computing `%{value}` has a symbolic expert count `{dim}`; it must be static to expand")]
    SymbolicExperts {
        /// The moe's result.
        value: String,
        /// The expert dim.
        dim: String,
    },
    /// An emitted instruction does not type-check (the moe itself is ill-typed).
    #[error("expanding `moe` computing `%{value}`: {source}")]
    Type {
        /// The moe's result.
        value: String,
        /// The type error.
        source: TypeError,
    },
}

/// Appends typed instructions to a function during an expansion.
struct Emitter<'a> {
    model: &'a Model,
    func: &'a mut Function,
    names: HashSet<String>,
    instrs: Vec<Instr>,
    value: String,
}

impl Emitter<'_> {
    fn ty(&self, o: Operand) -> TensorType {
        self.model.operand_type(self.func, o).clone()
    }

    fn fresh(&mut self, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = 1;
        while self.names.contains(&candidate) {
            candidate = format!("{name}_{n}");
            n += 1;
        }
        self.names.insert(candidate.clone());
        candidate
    }

    /// Emits `op(operands)` with a fresh result named `name`. `declared` is the
    /// result type for ops whose type is declared (`const`, `reshape`, `cast`).
    fn emit(
        &mut self,
        name: String,
        op: Op,
        operands: &[Operand],
        declared: Option<TensorType>,
    ) -> Result<Operand, ExpandError> {
        let types: Vec<TensorType> = operands.iter().map(|&o| self.ty(o)).collect();
        let refs: Vec<&TensorType> = types.iter().collect();
        let placeholder = TensorType::new::<Dim>(DType::F32, []);
        let declared = vec![declared.unwrap_or(placeholder)];
        let result = infer(&op, &refs, &declared).map_err(|source| ExpandError::Type {
            value: self.value.clone(),
            source,
        })?;
        let ty = result.into_iter().next().ok_or_else(|| ExpandError::Type {
            value: self.value.clone(),
            source: TypeError::ResultCount {
                op: op.name(),
                expected: 1,
                found: 0,
            },
        })?;
        let name = self.fresh(name);
        let id = self.func.add_value(name, ty);
        self.instrs.push(Instr {
            op,
            operands: operands.to_vec(),
            results: vec![id],
        });
        Ok(Operand::Value(id))
    }

    /// `reshape(slice(w, axis 0, e..e+1))`: expert `e`'s matrix of a stacked weight.
    fn expert_matrix(
        &mut self,
        prefix: &str,
        what: &str,
        w: Operand,
        e: u64,
    ) -> Result<Operand, ExpandError> {
        let slice = Op::Slice {
            axis: 0,
            start: e,
            end: e + 1,
        };
        let sliced = self.emit(format!("{prefix}_w{}", &what[..1]), slice, &[w], None)?;
        let mut ty = self.ty(sliced);
        ty.shape.0.remove(0);
        self.emit(format!("{prefix}_{what}"), Op::Reshape, &[sliced], Some(ty))
    }

    /// `(act(x·gate) * (x·up))·down`; the last matmul's result is `{prefix}_{last}`.
    #[allow(clippy::too_many_arguments)]
    fn gated_ffn(
        &mut self,
        prefix: &str,
        last: &str,
        act: GatedAct,
        x: Operand,
        gate: Operand,
        up: Operand,
        down: Operand,
    ) -> Result<Operand, ExpandError> {
        let gx = self.emit(format!("{prefix}_gx"), Op::MatMul, &[x, gate], None)?;
        let ux = self.emit(format!("{prefix}_ux"), Op::MatMul, &[x, up], None)?;
        let act_op = match act {
            GatedAct::SwiGlu => Op::Unary(UnaryFn::Silu),
            GatedAct::GeGlu => Op::Unary(UnaryFn::GeluErf),
        };
        let a = self.emit(format!("{prefix}_act"), act_op, &[gx], None)?;
        let h = self.emit(format!("{prefix}_h"), MUL, &[a, ux], None)?;
        self.emit(format!("{prefix}_{last}"), Op::MatMul, &[h, down], None)
    }
}

/// Replaces instruction `index` of `func` (a `moe`) by its dense expansion (see
/// the module docs), returning how many instructions now stand in its place.
/// `model` supplies param types; `func` need not be one of its functions.
pub fn expand_moe(model: &Model, func: &mut Function, index: usize) -> Result<usize, ExpandError> {
    let instr = func
        .body
        .get(index)
        .cloned()
        .ok_or_else(|| ExpandError::NoInstr {
            function: func.name.clone(),
            index,
        })?;
    let act = match instr.op {
        Op::Moe { act } => act,
        ref other => {
            return Err(ExpandError::NotMoe {
                function: func.name.clone(),
                index,
                op: other.name(),
            })
        }
    };
    let result = *instr.results.first().ok_or_else(|| ExpandError::NoInstr {
        function: func.name.clone(),
        index,
    })?;
    let value = func.value(result).name.clone();
    let ops = &instr.operands;
    let type_err = |source: TypeError| ExpandError::Type {
        value: value.clone(),
        source,
    };
    // Type-check the moe itself first, so the emitted code cannot fail halfway.
    {
        let types: Vec<&TensorType> = ops.iter().map(|&o| model.operand_type(func, o)).collect();
        infer(&instr.op, &types, &[func.value(result).ty.clone()]).map_err(type_err)?;
    }
    let (x, ids, weights) = (ops[0], ops[1], ops[2]);
    let experts = match &model.operand_type(func, ops[3]).shape.dims()[0] {
        Dim::Static(n) => *n,
        Dim::Sym(s) => {
            return Err(ExpandError::SymbolicExperts {
                value,
                dim: s.clone(),
            })
        }
    };
    let ids_dtype = model.operand_type(func, ids).dtype;
    let x_ty = model.operand_type(func, x).clone();
    let names = func.values.iter().map(|v| v.name.clone()).collect();
    let mut em = Emitter {
        model,
        func,
        names,
        instrs: Vec::new(),
        value: value.clone(),
    };
    let mut sum: Option<Operand> = None;
    for e in 0..experts {
        let p = format!("{value}_e{e}");
        let gate = em.expert_matrix(&p, "gate", ops[3], e)?;
        let up = em.expert_matrix(&p, "up", ops[4], e)?;
        let down = em.expert_matrix(&p, "down", ops[5], e)?;
        let id_ty = TensorType::new::<Dim>(ids_dtype, []);
        let id = em.emit(
            format!("{p}_id"),
            Op::Const { value: e as f64 },
            &[],
            Some(id_ty),
        )?;
        let hit = em.emit(format!("{p}_hit"), EQ, &[ids, id], None)?;
        let mut hitf_ty = em.ty(hit);
        hitf_ty.dtype = x_ty.dtype;
        let hitf = em.emit(format!("{p}_hitf"), Op::Cast, &[hit], Some(hitf_ty))?;
        let wk = em.emit(format!("{p}_wk"), MUL, &[hitf, weights], None)?;
        let wsum = em.emit(format!("{p}_wsum"), Op::ReduceSum, &[wk], None)?;
        let mut scale_ty = em.ty(wsum);
        scale_ty.shape = Shape(vec![scale_ty.shape.0[0].clone(), Dim::Static(1)]);
        let scale = em.emit(format!("{p}_scale"), Op::Reshape, &[wsum], Some(scale_ty))?;
        let dx = em.gated_ffn(&p, "dx", act, x, gate, up, down)?;
        let out = em.emit(format!("{p}_out"), MUL, &[dx, scale], None)?;
        sum = Some(match sum {
            None => out,
            Some(prev) => em.emit(format!("{p}_sum"), ADD, &[prev, out], None)?,
        });
    }
    if ops.len() == 9 {
        let p = format!("{value}_s");
        let out = em.gated_ffn(&p, "out", act, x, ops[6], ops[7], ops[8])?;
        sum = Some(match sum {
            None => out,
            Some(prev) => em.emit(format!("{value}_sum"), ADD, &[prev, out], None)?,
        });
    }
    let mut instrs = em.instrs;
    // The last instruction defines the moe's own result value instead of a fresh one.
    match (instrs.last_mut(), sum) {
        (Some(last), Some(Operand::Value(fresh))) if fresh.index() + 1 == func.values.len() => {
            last.results = vec![result];
            func.values.pop();
        }
        _ => {
            // E = 0 and no shared expert: the result is all zeros.
            let zero = Op::Const { value: 0.0 };
            instrs.push(Instr {
                op: zero,
                operands: Vec::new(),
                results: vec![result],
            });
        }
    }
    let n = instrs.len();
    func.body.splice(index..index + 1, instrs);
    Ok(n)
}

/// A copy of `model` with every `moe` in every function replaced by its dense
/// expansion ([`expand_moe`]). The input must verify; the result verifies too.
pub fn expand_all_moe(model: &Model) -> Result<Model, ExpandError> {
    verify(model)?;
    let mut out = model.clone();
    for fi in 0..out.functions.len() {
        let mut func = out.functions[fi].clone();
        let mut i = 0;
        while i < func.body.len() {
            if matches!(func.body[i].op, Op::Moe { .. }) {
                i += expand_moe(&out, &mut func, i)?;
            } else {
                i += 1;
            }
        }
        out.functions[fi] = func;
    }
    verify(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use crate::testutil::{f32t, i32t, Builder};
    use crate::weights::{random_tensor, random_tensor_in, random_weights};

    /// `moe` over `x: f32[tokens, 4]` with 2 experts of width 3, ids of `ids_dtype`,
    /// expert weights as params or (with `weights_as_inputs`) as function inputs,
    /// and an optional shared expert; returns the model and the moe's result name.
    fn model(ids_dtype: DType, weights_as_inputs: bool, shared: bool) -> Model {
        let mut b = Builder::new();
        b.dim("tokens", 16);
        let t = || Dim::from("tokens");
        let x = b.input("x", f32t([t(), Dim::Static(4)]));
        let ids = b.input("ids", TensorType::new(ids_dtype, [t(), Dim::Static(2)]));
        let w = b.input("w", f32t([t(), Dim::Static(2)]));
        let decl = |b: &mut Builder, name: &str, ty: TensorType| {
            if weights_as_inputs {
                b.input(name, ty)
            } else {
                b.param(name, ty)
            }
        };
        let wg = decl(&mut b, "w_gate", f32t([2u64, 4, 3]));
        let wu = decl(&mut b, "w_up", f32t([2u64, 4, 3]));
        let wd = decl(&mut b, "w_down", f32t([2u64, 3, 4]));
        let mut ops = vec![x, ids, w, wg, wu, wd];
        if shared {
            ops.push(decl(&mut b, "s_gate", f32t([4u64, 5])));
            ops.push(decl(&mut b, "s_up", f32t([4u64, 5])));
            ops.push(decl(&mut b, "s_down", f32t([5u64, 4])));
        }
        // Something before and after the moe, so positions in the body matter.
        let xn = b.op(Op::Unary(UnaryFn::Neg), &[x]);
        ops[0] = xn;
        let y = b.op(
            Op::Moe {
                act: GatedAct::SwiGlu,
            },
            &ops,
        );
        let z = b.op(ADD, &[y, x]);
        b.finish(&[z, y])
    }

    /// The ops of the documented per-expert block, in order.
    const BLOCK: [&str; 18] = [
        "slice",
        "reshape",
        "slice",
        "reshape",
        "slice",
        "reshape",
        "const",
        "eq",
        "cast",
        "mul",
        "reduce_sum",
        "reshape",
        "matmul",
        "matmul",
        "silu",
        "mul",
        "matmul",
        "mul",
    ];

    #[test]
    fn expansion_is_dense_regular_and_keeps_the_result() {
        let m = model(DType::I32, false, true);
        let y = m.functions[0].value_by_name("v2").unwrap();
        let out = expand_all_moe(&m).unwrap();
        let f = &out.functions[0];
        let names: Vec<&str> = f.body.iter().map(|i| i.op.name()).collect();
        assert!(!names.contains(&"moe"));
        // neg, block e0, block e1, add (sum), shared ffn (5), add (final), add (after).
        let mut expect = vec!["neg"];
        expect.extend(BLOCK);
        expect.extend(BLOCK);
        expect.push("add");
        expect.extend(["matmul", "matmul", "silu", "mul", "matmul", "add"]);
        expect.push("add");
        assert_eq!(names, expect);
        // The final add of the expansion defines the moe's own value, same name.
        let def = f.body.iter().position(|i| i.results == vec![y]).unwrap();
        assert_eq!(def, f.body.len() - 2);
        assert_eq!(f.value(y).name, "v2");
        assert_eq!(f.outputs, m.functions[0].outputs);
        // Names follow the documented scheme.
        for n in [
            "v2_e0_gate",
            "v2_e1_scale",
            "v2_e1_sum",
            "v2_s_out",
            "v2_e0_out",
        ] {
            assert!(f.value_by_name(n).is_some(), "{n}");
        }
        // Expert 1's const is 1 and its slices take 1..2.
        let c = f.value_by_name("v2_e1_id").unwrap();
        let ci = f.body.iter().find(|i| i.results == vec![c]).unwrap();
        assert_eq!(ci.op, Op::Const { value: 1.0 });
        let s = f.value_by_name("v2_e1_wg").unwrap();
        let si = f.body.iter().find(|i| i.results == vec![s]).unwrap();
        assert_eq!(
            si.op,
            Op::Slice {
                axis: 0,
                start: 1,
                end: 2
            }
        );
    }

    #[test]
    fn expansion_matches_moe_for_u32_ids_and_weights_as_values() {
        for (ids_dtype, as_inputs, shared) in [
            (DType::U32, false, false),
            (DType::I32, true, true),
            (DType::U32, true, false),
        ] {
            let m = model(ids_dtype, as_inputs, shared);
            let expanded = expand_all_moe(&m).unwrap();
            let w = random_weights(&m, 4);
            let mut inputs = vec![
                random_tensor(DType::F32, &[5, 4], 1).unwrap(),
                random_tensor_in(ids_dtype, &[5, 2], 0.0, 2.0, 2).unwrap(),
                random_tensor(DType::F32, &[5, 2], 3).unwrap(),
            ];
            if as_inputs {
                let f = &m.functions[0];
                for (i, &v) in f.inputs.iter().enumerate().skip(3) {
                    let dims: Vec<usize> = f
                        .value(v)
                        .ty
                        .shape
                        .static_sizes()
                        .unwrap()
                        .iter()
                        .map(|&d| d as usize)
                        .collect();
                    inputs.push(random_tensor(DType::F32, &dims, 10 + i as u64).unwrap());
                }
            }
            let a = evaluate(&m, "forward", &w, &inputs).unwrap();
            let b = evaluate(&expanded, "forward", &w, &inputs).unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!(p.max_abs_diff(q).unwrap() <= 1e-5);
            }
        }
    }

    #[test]
    fn fresh_names_avoid_collisions() {
        let mut b = Builder::new();
        let x = b.input("x", f32t([2u64, 4]));
        let ids = b.input("ids", i32t([2u64, 1]));
        // An input already named like the first emitted value.
        let w = b.input("v1_e0_wg", f32t([2u64, 1]));
        let wg = b.param("w_gate", f32t([1u64, 4, 3]));
        let wu = b.param("w_up", f32t([1u64, 4, 3]));
        let wd = b.param("w_down", f32t([1u64, 3, 4]));
        let y = b.op(
            Op::Moe {
                act: GatedAct::GeGlu,
            },
            &[x, ids, w, wg, wu, wd],
        );
        let m = b.finish(&[y]);
        let out = expand_all_moe(&m).unwrap();
        let f = &out.functions[0];
        assert!(f.value_by_name("v1_e0_wg_1").is_some());
        assert!(f.body.iter().any(|i| i.op == Op::Unary(UnaryFn::GeluErf)));
        // With one expert and no shared one, the expert's scaling mul defines %v1.
        let last = f.body.last().unwrap();
        assert_eq!(last.op, MUL);
        assert_eq!(f.value(last.results[0]).name, "v1");
    }

    #[test]
    fn expand_errors() {
        let m = model(DType::I32, false, false);
        let mut f = m.functions[0].clone();
        assert!(matches!(
            expand_moe(&m, &mut f, 0),
            Err(ExpandError::NotMoe { op: "neg", .. })
        ));
        assert!(matches!(
            expand_moe(&m, &mut f, 99),
            Err(ExpandError::NoInstr { index: 99, .. })
        ));
        let n = expand_moe(&m, &mut f, 1).unwrap();
        assert_eq!(n, 2 * BLOCK.len() + 1);
        let mut bad = m.clone();
        bad.functions[0].outputs.clear();
        assert!(matches!(expand_all_moe(&bad), Err(ExpandError::Verify(_))));
    }
}
