//! Typed convenience methods, one per op, on [`FunctionBuilder`].

use seam_ir::{
    BinaryFn, DType, Dim, GatedAct, Op, Operand, ReduceOp, RouteMode, Shape, TensorType, UnaryFn,
    ValueId,
};

use super::{BuildError, FunctionBuilder};

/// Result of a single-result builder call.
pub type Built = Result<ValueId, BuildError>;

macro_rules! unary {
    ($($(#[$doc:meta])* $method:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, name: &str, x: impl Into<Operand>) -> Built {
            self.single(name, $op, &[x.into()])
        }
    )*};
}

macro_rules! binary {
    ($($(#[$doc:meta])* $method:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, name: &str, a: impl Into<Operand>, b: impl Into<Operand>) -> Built {
            self.single(name, $op, &[a.into(), b.into()])
        }
    )*};
}

impl FunctionBuilder<'_> {
    fn single(&mut self, name: &str, op: Op, operands: &[Operand]) -> Built {
        Ok(self.op(&[name], op, operands)?[0])
    }

    fn single_declared(
        &mut self,
        name: &str,
        op: Op,
        operands: &[Operand],
        ty: TensorType,
    ) -> Built {
        Ok(self.op_declared(&[name], op, operands, vec![ty])?[0])
    }

    unary! {
        /// `neg(x)`.
        neg => Op::Unary(UnaryFn::Neg);
        /// `exp(x)`.
        exp => Op::Unary(UnaryFn::Exp);
        /// `silu(x)`.
        silu => Op::Unary(UnaryFn::Silu);
        /// `gelu(x)`, erf form.
        gelu => Op::Unary(UnaryFn::GeluErf);
        /// `gelu(x, approx=tanh)`.
        gelu_tanh => Op::Unary(UnaryFn::GeluTanh);
        /// `sigmoid(x)`.
        sigmoid => Op::Unary(UnaryFn::Sigmoid);
        /// `tanh(x)`.
        tanh => Op::Unary(UnaryFn::Tanh);
        /// `softmax(x)` over the last axis.
        softmax => Op::Softmax;
        /// `reduce_sum(x)` over the last axis.
        reduce_sum => Op::ReduceSum;
        /// `all_reduce(x, reduce=sum)`.
        all_reduce => Op::AllReduce { reduce: ReduceOp::Sum };
    }

    binary! {
        /// `matmul(a, b)`.
        matmul => Op::MatMul;
        /// `add(a, b)`, broadcasting.
        add => Op::Binary(BinaryFn::Add);
        /// `sub(a, b)`, broadcasting.
        sub => Op::Binary(BinaryFn::Sub);
        /// `mul(a, b)`, broadcasting.
        mul => Op::Binary(BinaryFn::Mul);
        /// `div(a, b)`, broadcasting.
        div => Op::Binary(BinaryFn::Div);
        /// `eq(a, b)`, broadcasting.
        eq => Op::Binary(BinaryFn::Eq);
        /// `gather(table, ids)`.
        gather => Op::Gather;
    }

    /// `const(value)` of the given type.
    pub fn constant(&mut self, name: &str, value: f64, ty: TensorType) -> Built {
        self.single_declared(name, Op::Const { value }, &[], ty)
    }

    /// `iota(axis)` of the given type.
    pub fn iota(&mut self, name: &str, axis: usize, ty: TensorType) -> Built {
        self.single_declared(name, Op::Iota { axis }, &[], ty)
    }

    /// `cast(x)` to `dtype`, same shape.
    pub fn cast(&mut self, name: &str, x: impl Into<Operand>, dtype: DType) -> Built {
        let x = x.into();
        let shape = self.type_of(x).shape.clone();
        self.single_declared(name, Op::Cast, &[x], TensorType { dtype, shape })
    }

    /// `reshape(x)` to `dims`, same dtype.
    pub fn reshape(&mut self, name: &str, x: impl Into<Operand>, dims: Vec<Dim>) -> Built {
        let x = x.into();
        let dtype = self.type_of(x).dtype;
        let ty = TensorType {
            dtype,
            shape: Shape(dims),
        };
        self.single_declared(name, Op::Reshape, &[x], ty)
    }

    /// `rms_norm(x, w, eps)`.
    pub fn rms_norm(
        &mut self,
        name: &str,
        x: impl Into<Operand>,
        w: impl Into<Operand>,
        eps: f32,
    ) -> Built {
        self.single(name, Op::RmsNorm { eps }, &[x.into(), w.into()])
    }

    /// `layer_norm(x, w, b, eps)`.
    pub fn layer_norm(
        &mut self,
        name: &str,
        x: impl Into<Operand>,
        w: impl Into<Operand>,
        b: impl Into<Operand>,
        eps: f32,
    ) -> Built {
        self.single(name, Op::LayerNorm { eps }, &[x.into(), w.into(), b.into()])
    }

    /// `transpose(x, perm)`.
    pub fn transpose(&mut self, name: &str, x: impl Into<Operand>, perm: Vec<usize>) -> Built {
        self.single(name, Op::Transpose { perm }, &[x.into()])
    }

    /// `concat(parts..., axis)`.
    pub fn concat(&mut self, name: &str, parts: &[Operand], axis: usize) -> Built {
        self.single(name, Op::Concat { axis }, parts)
    }

    /// `slice(x, axis, start, end)`.
    pub fn slice(
        &mut self,
        name: &str,
        x: impl Into<Operand>,
        axis: usize,
        start: u64,
        end: u64,
    ) -> Built {
        self.single(name, Op::Slice { axis, start, end }, &[x.into()])
    }

    /// `tail(x)`: the last `rows` rows of `x` along axis 0.
    pub fn tail(&mut self, name: &str, x: impl Into<Operand>, rows: Dim) -> Built {
        let x = x.into();
        let mut ty = self.type_of(x).clone();
        if let Some(first) = ty.shape.0.first_mut() {
            *first = rows;
        }
        self.single_declared(name, Op::Tail, &[x], ty)
    }

    /// `write_tail(buf, new)`: `buf` with its last rows replaced by `new`.
    pub fn write_tail(
        &mut self,
        name: &str,
        buf: impl Into<Operand>,
        new: impl Into<Operand>,
    ) -> Built {
        self.single(name, Op::WriteTail, &[buf.into(), new.into()])
    }

    /// `write_rows(buf, slot, pos, new)`: the pool `buf[S, L, ...]` with row
    /// `(slot[t], pos[t])` replaced by `new[t]` for every token `t` (the
    /// writer of a pool state).
    pub fn write_rows(
        &mut self,
        name: &str,
        buf: impl Into<Operand>,
        [slot, pos]: [Operand; 2],
        new: impl Into<Operand>,
    ) -> Built {
        let operands = [buf.into(), slot, pos, new.into()];
        self.single(name, Op::WriteRows, &operands)
    }

    /// `rope(x, pos, theta)`.
    pub fn rope(
        &mut self,
        name: &str,
        x: impl Into<Operand>,
        pos: impl Into<Operand>,
        theta: f32,
    ) -> Built {
        self.single(name, Op::Rope { theta }, &[x.into(), pos.into()])
    }

    /// `attention(q, k, v, causal, scale)`.
    pub fn attention(
        &mut self,
        name: &str,
        qkv: [Operand; 3],
        causal: bool,
        scale: Option<f32>,
    ) -> Built {
        self.single(name, Op::Attention { causal, scale }, &qkv)
    }

    /// `pooled_attention(q, k_pool, v_pool, slot, pos, scale)`: query `t`
    /// attends causally over rows `0..=pos[t]` of slot `slot[t]` of the pools.
    pub fn pooled_attention(
        &mut self,
        name: &str,
        qkv: [Operand; 3],
        [slot, pos]: [Operand; 2],
        scale: Option<f32>,
    ) -> Built {
        let [q, k, v] = qkv;
        self.single(name, Op::PooledAttention { scale }, &[q, k, v, slot, pos])
    }

    /// `topk(x, k)` → (values, indices).
    pub fn topk(
        &mut self,
        names: [&str; 2],
        x: impl Into<Operand>,
        k: usize,
    ) -> Result<(ValueId, ValueId), BuildError> {
        let r = self.op(&names, Op::TopK { k }, &[x.into()])?;
        Ok((r[0], r[1]))
    }

    /// `route(logits [, scores], k, mode, renorm)` → (ids, weights). Pass `scores`
    /// exactly when `mode` is [`RouteMode::Take`].
    pub fn route(
        &mut self,
        names: [&str; 2],
        logits: impl Into<Operand>,
        scores: Option<Operand>,
        k: usize,
        mode: RouteMode,
        renorm: bool,
    ) -> Result<(ValueId, ValueId), BuildError> {
        let mut operands = vec![logits.into()];
        operands.extend(scores);
        let r = self.op(&names, Op::Route { k, mode, renorm }, &operands)?;
        Ok((r[0], r[1]))
    }

    /// `moe(x, ids, weights, w_gate, w_up, w_down [, shared gate, up, down], act)`.
    pub fn moe(
        &mut self,
        name: &str,
        routing: [Operand; 3],
        experts: [Operand; 3],
        shared: Option<[Operand; 3]>,
        act: GatedAct,
    ) -> Built {
        let mut operands: Vec<Operand> = routing.into_iter().chain(experts).collect();
        operands.extend(shared.into_iter().flatten());
        self.single(name, Op::Moe { act }, &operands)
    }

    /// `grouped_matmul(x, ids, w)`: row `t` of `x` times matrix `ids[t]` of `w`.
    pub fn grouped_matmul(
        &mut self,
        name: &str,
        x: impl Into<Operand>,
        ids: impl Into<Operand>,
        w: impl Into<Operand>,
    ) -> Built {
        let operands = [x.into(), ids.into(), w.into()];
        self.single(name, Op::GroupedMatMul, &operands)
    }

    /// `cache(x, key, refresh)`.
    pub fn cache(&mut self, name: &str, x: impl Into<Operand>, key: &str, refresh: u32) -> Built {
        self.single(
            name,
            Op::Cache {
                key: key.to_string(),
                refresh,
            },
            &[x.into()],
        )
    }
}
