//! Test helpers: a minimal builder that appends typed instructions to a function
//! (result types from [`crate::infer::infer`]) and a few tensor shorthands.

use crate::eval::{evaluate, EvalError, Tensor};
use crate::infer::infer;
use crate::model::{DimDecl, Function, Instr, Model, Operand, ParamDecl, ParamId};
use crate::op::{BinaryFn, GatedAct, Op, RouteMode};
use crate::shape::{Dim, TensorType};
use crate::verify::verify;
use crate::weights::Weights;
use seam_core::DType;

/// Builds a one-function model (`forward`) instruction by instruction.
pub struct Builder {
    pub model: Model,
    pub f: Function,
    n: usize,
}

/// `f32[dims]`.
pub fn f32t<D: Into<Dim>>(dims: impl IntoIterator<Item = D>) -> TensorType {
    TensorType::new(DType::F32, dims)
}

/// `i32[dims]`.
pub fn i32t<D: Into<Dim>>(dims: impl IntoIterator<Item = D>) -> TensorType {
    TensorType::new(DType::I32, dims)
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            model: Model::new("test"),
            f: Function::new("forward"),
            n: 0,
        }
    }

    /// Declares `dim name <= max`.
    pub fn dim(&mut self, name: &str, max: u64) {
        self.model.dims.push(DimDecl {
            name: name.into(),
            max,
        });
    }

    /// Declares a param.
    pub fn param(&mut self, name: &str, ty: TensorType) -> Operand {
        self.model.params.push(ParamDecl::new(name, ty));
        Operand::Param(ParamId(self.model.params.len() as u32 - 1))
    }

    /// Adds an input.
    pub fn input(&mut self, name: &str, ty: TensorType) -> Operand {
        let id = self.f.add_value(name, ty);
        self.f.inputs.push(id);
        Operand::Value(id)
    }

    fn ty(&self, o: Operand) -> TensorType {
        self.model.operand_type(&self.f, o).clone()
    }

    /// Emits `op` with inferred result types (`declared` for const/iota/reshape/cast).
    pub fn emit(
        &mut self,
        op: Op,
        operands: &[Operand],
        declared: Option<TensorType>,
    ) -> Vec<Operand> {
        let types: Vec<TensorType> = operands.iter().map(|&o| self.ty(o)).collect();
        let refs: Vec<&TensorType> = types.iter().collect();
        let decl = vec![declared.unwrap_or_else(|| f32t::<u64>([])); op.num_results()];
        let out = infer(&op, &refs, &decl).unwrap_or_else(|e| panic!("{op}: {e}"));
        let results: Vec<_> = out
            .into_iter()
            .map(|ty| {
                self.n += 1;
                self.f.add_value(format!("v{}", self.n), ty)
            })
            .collect();
        self.f.body.push(Instr {
            op,
            operands: operands.to_vec(),
            results: results.clone(),
        });
        results.into_iter().map(Operand::Value).collect()
    }

    /// Emits a one-result op with inferred type.
    pub fn op(&mut self, op: Op, operands: &[Operand]) -> Operand {
        self.emit(op, operands, None)[0]
    }

    /// Emits a one-result op with a declared type.
    pub fn op_ty(&mut self, op: Op, operands: &[Operand], ty: TensorType) -> Operand {
        self.emit(op, operands, Some(ty))[0]
    }

    /// Finishes with these outputs; the model verifies.
    pub fn finish(mut self, outputs: &[Operand]) -> Model {
        self.f.outputs = outputs
            .iter()
            .map(|o| match o {
                Operand::Value(v) => *v,
                Operand::Param(_) => panic!("params cannot be returned"),
            })
            .collect();
        self.model.functions.push(self.f);
        verify(&self.model).unwrap_or_else(|e| panic!("test model does not verify: {e}"));
        self.model
    }
}

/// An f32 tensor.
pub fn tf(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::f32(shape.to_vec(), data.to_vec()).unwrap()
}

/// An i32 tensor.
pub fn ti(shape: &[usize], data: &[i32]) -> Tensor {
    Tensor::i32(shape.to_vec(), data.to_vec()).unwrap()
}

/// Evaluates `forward` with the given params (declaration order) and inputs.
pub fn run(
    model: &Model,
    params: Vec<Tensor>,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, EvalError> {
    let w = Weights::new(model, params).unwrap();
    evaluate(model, "forward", &w, inputs)
}

/// Asserts two float slices agree within `tol`.
#[track_caller]
pub fn assert_close(found: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(found.len(), expected.len(), "{found:?} vs {expected:?}");
    for (i, (a, b)) in found.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "element {i}: {a} vs {b} (tol {tol})\nfound    {found:?}\nexpected {expected:?}"
        );
    }
}

/// Shapes of a transformer-style decoder with MoE FFNs, for [`moe_decoder`].
pub struct DecoderConfig {
    pub layers: usize,
    pub d: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub experts: u64,
    pub k: usize,
    pub ffn: u64,
    pub shared_ffn: u64,
    pub vocab: u64,
    pub max_tokens: u64,
}

/// A Llama/Mixtral-style decoder: embed → per layer (rms_norm → q/k/v → rope →
/// causal GQA attention → o → residual; rms_norm → router → route → moe with a
/// shared expert → residual) → final norm → lm head. Inputs: `ids: i32[tokens]`;
/// positions come from `iota`. Output: logits `f32[tokens, vocab]`.
pub fn moe_decoder(c: &DecoderConfig) -> Model {
    let mut b = Builder::new();
    b.dim("tokens", c.max_tokens);
    let t = || Dim::from("tokens");
    let dh = c.d / c.heads;
    let kv = dh * c.kv_heads;
    let ids = b.input("ids", i32t([t()]));
    let embed = b.param("embed", f32t([c.vocab, c.d]));
    let pos = b.op_ty(Op::Iota { axis: 0 }, &[], i32t([t()]));
    let mut x = b.op(Op::Gather, &[embed, ids]);
    for l in 0..c.layers {
        let p = |s: &str| format!("layers.{l}.{s}");
        let n1 = b.param(&p("attn_norm"), f32t([c.d]));
        let wq = b.param(&p("wq"), f32t([c.d, c.d]));
        let wk = b.param(&p("wk"), f32t([c.d, kv]));
        let wv = b.param(&p("wv"), f32t([c.d, kv]));
        let wo = b.param(&p("wo"), f32t([c.d, c.d]));
        let n2 = b.param(&p("ffn_norm"), f32t([c.d]));
        let wr = b.param(&p("router"), f32t([c.d, c.experts]));
        let wg = b.param(&p("w_gate"), f32t([c.experts, c.d, c.ffn]));
        let wu = b.param(&p("w_up"), f32t([c.experts, c.d, c.ffn]));
        let wd = b.param(&p("w_down"), f32t([c.experts, c.ffn, c.d]));
        let sg = b.param(&p("s_gate"), f32t([c.d, c.shared_ffn]));
        let su = b.param(&p("s_up"), f32t([c.d, c.shared_ffn]));
        let sd = b.param(&p("s_down"), f32t([c.shared_ffn, c.d]));
        let h = b.op(Op::RmsNorm { eps: 1e-5 }, &[x, n1]);
        let q = b.op(Op::MatMul, &[h, wq]);
        let k = b.op(Op::MatMul, &[h, wk]);
        let v = b.op(Op::MatMul, &[h, wv]);
        let q = b.op_ty(Op::Reshape, &[q], f32t([t(), c.heads.into(), dh.into()]));
        let k = b.op_ty(Op::Reshape, &[k], f32t([t(), c.kv_heads.into(), dh.into()]));
        let v = b.op_ty(Op::Reshape, &[v], f32t([t(), c.kv_heads.into(), dh.into()]));
        let q = b.op(Op::Rope { theta: 10000.0 }, &[q, pos]);
        let k = b.op(Op::Rope { theta: 10000.0 }, &[k, pos]);
        let a = b.op(
            Op::Attention {
                causal: true,
                scale: None,
            },
            &[q, k, v],
        );
        let a = b.op_ty(Op::Reshape, &[a], f32t([t(), c.d.into()]));
        let a = b.op(Op::MatMul, &[a, wo]);
        x = b.op(Op::Binary(BinaryFn::Add), &[x, a]);
        let h = b.op(Op::RmsNorm { eps: 1e-5 }, &[x, n2]);
        let logits = b.op(Op::MatMul, &[h, wr]);
        let r = b.emit(
            Op::Route {
                k: c.k,
                mode: RouteMode::SoftmaxTopk,
                renorm: true,
            },
            &[logits],
            None,
        );
        let m = b.op(
            Op::Moe {
                act: GatedAct::SwiGlu,
            },
            &[h, r[0], r[1], wg, wu, wd, sg, su, sd],
        );
        x = b.op(Op::Binary(BinaryFn::Add), &[x, m]);
    }
    let nf = b.param("final_norm", f32t([c.d]));
    let head = b.param("lm_head", f32t([c.d, c.vocab]));
    let h = b.op(Op::RmsNorm { eps: 1e-5 }, &[x, nf]);
    let logits = b.op(Op::MatMul, &[h, head]);
    b.finish(&[logits])
}
