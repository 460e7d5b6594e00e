//! Objectives summed over a discrete latent y (Kingma et al.'s M2, the GM-DGM), in ONE batched
//! pass instead of K passes: each of the batch's R rows is repeated K times
//! ([`Graph::repeat_rows`], row r * K + k stands for class k), the class one-hots are a
//! constant ([`Graph::class_onehots`]), and the per-(row, class) losses computed on the
//! expanded batch are weighted by q(y|x) ([`Graph::weighted_loss`]).
//!
//! How data-dependent loss weights fit the autodiff: the fused loss kernels write their
//! gradient in the forward pass. A loss that feeds a weighted sum is built *raw* (scale 1, not a
//! term of the objective: [`Graph::raw_bce`], [`Graph::raw_kl`], [`Graph::raw_kl_gaussians`]).
//! The weighted sum is the term: it computes scale * sum_k w[r, k] l[r, k] per row and, in the
//! same kernel, its gradient w.r.t. the weights (scale * l). In the backward pass it gives the
//! raw loss's per-row output the gradient scale * w, and a raw loss node turns that into its
//! inputs' gradients by scaling each row of its kernel-written gradient (`row_scale`). A loss
//! that is a term of the objective seeds its gradient directly, as before. So any per-row loss
//! can be weighted by any differentiable per-row tensor, and nothing else changes.

use super::autodiff::Autodiff;
use super::{GOp, Graph, Init, Launch, LossKind, Node, Role, TensorId};
use crate::backend::{Act, DType, Gemm, Op};

/// The suffix of the one-hot rows of a [`Graph::class_dense`] layer's weight.
pub const CLASS_WEIGHT: &str = "class_weight";

impl Graph {
    /// A constant f32 tensor: uploaded once when the program is compiled, never written by
    /// the host, no gradient.
    pub fn constant(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> TensorId {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "constant '{name}': {} values for shape {shape:?}", values.len());
        let t = self.tensor(name, shape, DType::F32, Role::Input);
        self.constants.push((t, values));
        t
    }

    /// y = x w without a bias (e.g. a linear map of a one-hot: row k of w).
    pub fn linear_no_bias(&mut self, name: &str, x: TensorId, w: TensorId) -> TensorId {
        let (rows, _) = self.linear_rows(x, w);
        let out = self.shape(w)[1];
        let y = self.temp(name.into(), &[rows, out], DType::F32);
        self.push(GOp::Linear { act: crate::backend::Act::Identity }, vec![x, w], vec![y]);
        y
    }

    /// [rows, cols] -> [rows * copies, cols], row r * copies + k = row r.
    pub fn repeat_rows(&mut self, name: &str, x: TensorId, copies: usize) -> TensorId {
        let (rows, cols) = super::rows_cols(self.shape(x));
        let y = self.temp(name.into(), &[rows * copies, cols], DType::F32);
        self.push(GOp::RepeatRows { copies }, vec![x], vec![y]);
        y
    }

    /// The constant [rows * classes, classes] whose row r * classes + k is one-hot(k): the y of
    /// every (row, class) pair of an expanded batch.
    pub fn class_onehots(&mut self, name: &str, rows: usize, classes: usize) -> TensorId {
        let mut v = vec![0f32; rows * classes * classes];
        for i in 0..rows * classes {
            v[i * classes + i % classes] = 1.0;
        }
        self.constant(name, &[rows * classes, classes], v)
    }

    /// A dense layer on every (row, class) pair: y [rows * classes, out], whose row
    /// r * classes + k is act(concat(x_r, one-hot(k)) W + b), returned with the one-hots. W is kept as two
    /// parameters, '{name}.weight' [cols, out] (its first `cols` rows) and
    /// '{name}.class_weight' [classes, out] (the one-hot rows), so that x_r W is computed once
    /// per row and not once per pair ([`GOp::ClassLinear`]): the pairs differ only in the row of
    /// W their one-hot picks. Both are initialised as the one [cols + classes, out] matrix
    /// would be (Glorot over that fan-in, drawn in that order). Checkpoints that hold the one
    /// matrix load through `train::checkpoint::split_class_weights`.
    pub fn class_dense(&mut self, name: &str, x: TensorId, classes: usize, out: usize, act: Act) -> (TensorId, TensorId) {
        let (rows, cols) = super::rows_cols(self.shape(x));
        let init = Init::GlorotUniform { fan_in: cols + classes, fan_out: out };
        let w = self.param(&format!("{name}.weight"), &[cols, out], init);
        let wc = self.param(&format!("{name}.{CLASS_WEIGHT}"), &[classes, out], init);
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros);
        let onehot = self.class_onehots(&format!("{name}.onehot"), rows, classes);
        let y = self.temp(name.into(), &[rows * classes, out], DType::F32);
        let xw = self.temp(format!("{name}.rows"), &[rows, out], DType::F32);
        self.push(GOp::ClassLinear { act }, vec![x, onehot, w, wc, b], vec![y, xw]);
        (y, onehot)
    }

    fn raw_loss(&mut self, name: &str, op: GOp, inputs: Vec<TensorId>, grads_of: &[usize]) -> TensorId {
        let rows = super::rows_cols(self.shape(inputs[0])).0;
        let per_row = self.temp(format!("{name}.per_row"), &[rows], DType::F32);
        let mut outputs = vec![per_row];
        for &k in grads_of {
            let shape = self.shape(inputs[k]).to_vec();
            outputs.push(self.temp(format!("{name}.grad{k}"), &shape, DType::F32));
        }
        self.push(op, inputs, outputs);
        per_row
    }

    /// Bernoulli NLL per row (scale 1), to be weighted by [`Graph::weighted_loss`].
    pub fn raw_bce(&mut self, name: &str, logits: TensorId, target: TensorId) -> TensorId {
        self.raw_loss(name, GOp::Bce { scale: 1.0 }, vec![logits, target], &[0])
    }
    /// KL(q || N(0, I)) per row (scale 1), to be weighted.
    pub fn raw_kl(&mut self, name: &str, mu: TensorId, logvar: TensorId) -> TensorId {
        self.raw_loss(name, GOp::Kl { scale: 1.0 }, vec![mu, logvar], &[0, 1])
    }
    /// KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)) per row (scale 1), to be weighted; gradients
    /// reach all four inputs.
    pub fn raw_kl_gaussians(&mut self, name: &str, mu_q: TensorId, lv_q: TensorId, mu_p: TensorId, lv_p: TensorId) -> TensorId {
        self.raw_loss(name, GOp::KlGaussians { scale: 1.0 }, vec![mu_q, lv_q, mu_p, lv_p], &[0, 1, 3])
    }

    /// The objective term scale * sum_{r, k} w[r, k] loss[r * K + k] for a raw per-(row,
    /// class) loss [rows * K] and differentiable weights w [rows, K]; its per-row values
    /// ([rows], returned) are the term's `per_row`.
    pub fn weighted_loss(&mut self, kind: LossKind, loss: TensorId, weights: TensorId, scale: f32) -> TensorId {
        let name = kind.to_string();
        let (rows, k) = super::rows_cols(self.shape(weights));
        assert_eq!(
            self.tensors[loss].len(),
            rows * k,
            "weighted loss '{name}': {} per-pair losses for {rows} x {k} weights",
            self.tensors[loss].len()
        );
        let per_row = self.temp(format!("{name}.per_row"), &[rows], DType::F32);
        let dw = self.temp(format!("{name}.grad_weights"), &[rows, k], DType::F32);
        self.push(GOp::WeightedSum { scale }, vec![loss, weights], vec![per_row, dw]);
        self.add_loss_term(kind, per_row, scale);
        per_row
    }

    /// KL(q(y|x) || p(y)) on unlabeled rows and -log p(y) on labeled ones (see
    /// [`Op::CategoricalKl`]), q = softmax(logits), as a term of the objective.
    pub fn categorical_kl_loss(&mut self, kind: LossKind, logits: TensorId, log_prior: TensorId, labels: TensorId, scale: f32) -> TensorId {
        let per_row = self.raw_loss(&kind.to_string(), GOp::CategoricalKl { scale }, vec![logits, log_prior, labels], &[0]);
        self.add_loss_term(kind, per_row, scale);
        per_row
    }

    /// KL(softmax(target) || softmax(logits)) per row (see [`Op::ConsistencyKl`]) as a term of
    /// the objective; only `logits` gets a gradient.
    pub fn consistency_kl_loss(&mut self, kind: LossKind, logits: TensorId, target: TensorId, scale: f32) -> TensorId {
        assert_eq!(self.shape(logits), self.shape(target), "consistency_kl: logits and target differ in shape");
        let per_row = self.raw_loss(&kind.to_string(), GOp::ConsistencyKl { scale }, vec![logits, target], &[0]);
        self.add_loss_term(kind, per_row, scale);
        per_row
    }
}

/// The kernels of a `ClassLinear` node: x W once per row, repeated over the classes, then
/// act(one-hots W_class + b + that) in the product's epilogue (beta = 1).
pub(super) fn class_linear_forward(g: &Graph, n: &Node, act: Act, out: &mut Vec<Launch>) {
    let (i, o) = (&n.inputs, &n.outputs);
    let (rows, cols) = super::rows_cols(&g.tensors[i[0]].shape);
    let (pairs, classes) = super::rows_cols(&g.tensors[i[1]].shape);
    let width = g.tensors[i[2]].shape[1];
    out.push(Launch { op: Op::Gemm(Gemm::new(rows, width, cols)), args: vec![Some(i[0]), Some(i[2]), None, Some(o[1])] });
    out.push(Launch { op: Op::RepeatRows { rows, cols: width, copies: classes }, args: vec![Some(o[1]), Some(o[0])] });
    out.push(Launch {
        op: Op::Gemm(Gemm::new(pairs, width, classes).bias(act).scaled(1.0, 1.0)),
        args: vec![Some(i[1]), Some(i[3]), Some(i[4]), Some(o[0])],
    });
}

/// Backward of `ClassLinear`: dz = dy act'(y); the one-hot product's gradients (dW_class =
/// one-hots^T dz, db = colsum(dz)); the rows' share s = dz summed over each row's classes, then
/// the row product's (dW = x^T s, dx = s W^T).
pub(super) fn class_linear_backward(g: &mut Graph, ad: &mut Autodiff, need: &[bool], n: &Node, act: Act) {
    let (i, o) = (&n.inputs, &n.outputs);
    let Some(dy) = ad.grad_of(o[0]) else { return };
    let (rows, cols) = super::rows_cols(&g.tensors[i[0]].shape);
    let (pairs, classes) = super::rows_cols(&g.tensors[i[1]].shape);
    let width = g.tensors[i[2]].shape[1];
    let dz = g.act_grad(ad, o[0], dy, act, pairs * width);
    // the one-hots are a constant: no gradient of their own
    g.linear_grads(ad, need, [i[1], i[3]], Some(i[4]), dz, (pairs, classes, width));
    if !need[i[2]] && !need[i[0]] {
        return;
    }
    let s = g.temp(format!("{}.grad_rows", g.tensors[o[0]].name), &[rows, width], DType::F32);
    ad.launches.push(Launch { op: Op::RepeatRowsBackward { rows, cols: width, copies: classes }, args: vec![Some(dz), Some(s)] });
    g.linear_grads(ad, need, [i[0], i[2]], None, s, (rows, cols, width));
}

/// The kernel of one of this module's nodes (inputs then outputs, in slot order).
pub(super) fn forward_op(g: &Graph, n: &Node) -> Op {
    let s = |t: TensorId| super::rows_cols(&g.tensors[t].shape);
    let (i, o) = (&n.inputs, &n.outputs);
    match n.op {
        GOp::RepeatRows { copies } => Op::RepeatRows { rows: s(i[0]).0, cols: s(i[0]).1, copies },
        GOp::WeightedSum { scale } => Op::WeightedRowSum { rows: s(i[1]).0, classes: s(i[1]).1, scale },
        GOp::CategoricalKl { scale } => Op::CategoricalKl { rows: s(i[0]).0, classes: s(i[0]).1, scale },
        GOp::ConsistencyKl { scale } => Op::ConsistencyKl { rows: s(i[0]).0, classes: s(i[0]).1, scale },
        GOp::KlGaussians { scale } => Op::KlGaussians { rows: s(i[0]).0, cols: s(i[0]).1, scale },
        _ => unreachable!("not a mixture node: {:?} -> {o:?}", n.op),
    }
}

/// Backward of a fused loss node (`Bce`, `Kl`, `GaussianNll`, `Ce`, `CategoricalKl`,
/// `KlGaussians`): a term of the objective seeds its kernel-written gradients; a raw loss
/// scales them row by row by the gradient its per-row output received (from a weighted sum).
pub(super) fn loss_backward(g: &mut Graph, ad: &mut Autodiff, need: &[bool], n: &Node) {
    let (i, o) = (&n.inputs, &n.outputs);
    // (input, the output holding its gradient)
    let pairs: Vec<(usize, TensorId)> = match n.op {
        GOp::Bce { .. } | GOp::Ce { .. } | GOp::CategoricalKl { .. } | GOp::ConsistencyKl { .. } => vec![(0, o[1])],
        GOp::Kl { .. } | GOp::GaussianNll { .. } => vec![(0, o[1]), (1, o[2])],
        GOp::KlGaussians { .. } => vec![(0, o[1]), (1, o[2]), (3, o[3])],
        _ => unreachable!("not a loss node"),
    };
    let is_term = g.losses.iter().any(|l| l.per_row == o[0]);
    let row_weight = if is_term { None } else { ad.grad_of(o[0]) };
    if !is_term && row_weight.is_none() {
        return; // a raw loss nothing weighted
    }
    let rows = g.tensors[o[0]].len();
    let weighted = |g: &mut Graph, ad: &mut Autodiff, grad: TensorId| -> TensorId {
        let Some(w) = row_weight else { return grad };
        let shape = g.tensors[grad].shape.clone();
        let n = g.tensors[grad].len();
        let y = g.temp(format!("{}.weighted", g.tensors[grad].name), &shape, DType::F32);
        ad.launches.push(Launch { op: Op::RowScale { rows, cols: n / rows, alpha: 1.0 }, args: vec![Some(grad), Some(w), Some(y)] });
        y
    };
    for (k, grad) in pairs {
        let mu_q_needed_for_p = matches!(n.op, GOp::KlGaussians { .. }) && k == 0 && need[i[2]];
        if !need[i[k]] && !mu_q_needed_for_p {
            continue;
        }
        let gk = weighted(g, ad, grad);
        if mu_q_needed_for_p {
            // d KL / d mu_p = -d KL / d mu_q
            let len = g.tensors[gk].len();
            let shape = g.tensors[gk].shape.clone();
            let gp = g.temp(format!("{}.grad_mu_p", g.tensors[o[0]].name), &shape, DType::F32);
            ad.launches.push(Launch { op: Op::Scale { n: len, alpha: -1.0 }, args: vec![Some(gk), Some(gp)] });
            ad.contribute(g, i[2], gp);
        }
        if need[i[k]] {
            ad.contribute(g, i[k], gk);
        }
    }
}

/// Backward of `RepeatRows` and `WeightedSum`.
pub(super) fn backward(g: &mut Graph, ad: &mut Autodiff, need: &[bool], n: &Node) {
    let (i, o) = (&n.inputs, &n.outputs);
    match n.op {
        GOp::RepeatRows { copies } => {
            let Some(dy) = ad.grad_of(o[0]) else { return };
            if !need[i[0]] {
                return;
            }
            let (rows, cols) = super::rows_cols(&g.tensors[i[0]].shape);
            let shape = g.tensors[i[0]].shape.clone();
            let dx = g.temp(format!("{}.grad_in", g.tensors[o[0]].name), &shape, DType::F32);
            ad.launches.push(Launch { op: Op::RepeatRowsBackward { rows, cols, copies }, args: vec![Some(dy), Some(dx)] });
            ad.contribute(g, i[0], dx);
        }
        GOp::WeightedSum { scale } => {
            // d/dw = scale * loss (written by the forward kernel); d/dloss = scale * w
            if need[i[1]] {
                ad.contribute(g, i[1], o[1]);
            }
            if need[i[0]] {
                let n_el = g.tensors[i[0]].len();
                let dl = g.temp(format!("{}.grad_loss", g.tensors[o[0]].name), &[n_el], DType::F32);
                ad.launches.push(Launch { op: Op::Scale { n: n_el, alpha: scale }, args: vec![Some(i[1]), Some(dl)] });
                ad.contribute(g, i[0], dl);
            }
        }
        _ => unreachable!("not a mixture node"),
    }
}
