//! Lowering of the graph to kernels: the forward pass in node order, then reverse-mode
//! autodiff appending the backward pass (bookkeeping in `autodiff`). Each op's gradient rule is
//! one arm of `backward_launches`; the convolutional and mixture families keep theirs beside
//! their forward (`cnn`, `mixture`).

use super::autodiff::{Autodiff, Grad};
use super::{cnn, last_axis, mixture, rows_cols, GOp, Graph, Launch, Node, Role, TensorId};
use crate::backend::{Act, DType, Gemm, Op};

impl Graph {
    /// Kernels of the forward pass, in order.
    pub fn forward_launches(&self) -> Vec<Launch> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let (i, o) = (&n.inputs, &n.outputs);
            let s = |t: TensorId| rows_cols(&self.tensors[t].shape);
            let op = match n.op {
                GOp::Linear { act } => {
                    let (rows, inp) = self.linear_rows(i[0], i[1]);
                    let outc = self.tensors[i[1]].shape[1];
                    if i.len() == 2 {
                        out.push(Launch {
                            op: Op::Gemm(Gemm::new(rows, outc, inp).act(act)),
                            args: vec![Some(i[0]), Some(i[1]), None, Some(o[0])],
                        });
                        continue;
                    }
                    Op::Gemm(Gemm::new(rows, outc, inp).bias(act))
                }
                GOp::Fill { value } => Op::Fill { n: self.tensors[o[0]].len(), value },
                GOp::ShiftScale { shape: [height, width, channels], max_shift, scale, stream } => Op::ShiftScale {
                    rows: self.tensors[o[0]].len() / (height * width * channels),
                    height,
                    width,
                    channels,
                    max_shift,
                    scale,
                    stream,
                },
                GOp::Lstm => {
                    let sh = &self.tensors[o[0]].shape;
                    Op::LstmForward { batch: sh[0], steps: sh[1], hidden: sh[2] }
                }
                GOp::Concat => {
                    let (la, lb) = (last_axis(&self.tensors[i[0]].shape), last_axis(&self.tensors[i[1]].shape));
                    Op::ConcatCols { rows: la.0, cols_a: la.1, cols_b: lb.1 }
                }
                GOp::Softmax => {
                    let (rows, cols) = last_axis(&self.tensors[i[0]].shape);
                    Op::SoftmaxRows { rows, cols }
                }
                GOp::Reparam { stream } => Op::Reparam { n: self.tensors[i[1]].len(), stream },
                GOp::LabelMix => Op::LabelMix { rows: s(i[0]).0, classes: s(i[0]).1 },
                GOp::StraightThrough => {
                    let (rows, classes) = last_axis(&self.tensors[i[0]].shape);
                    Op::OneHotArgmax { rows, classes }
                }
                GOp::GatherU8 { src_rows } => Op::GatherRowsU8 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::GatherF32 { src_rows } => Op::GatherRowsF32 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::GatherF16 { src_rows } => Op::GatherRowsF16 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::Bce { scale } => Op::BceLogits { rows: s(i[0]).0, cols: s(i[0]).1, scale },
                GOp::Kl { scale } => Op::Kl { rows: s(i[0]).0, cols: s(i[0]).1, scale },
                GOp::Ce { scale, smoothing } => Op::SoftmaxCe { rows: s(i[0]).0, classes: s(i[0]).1, scale, smoothing },
                GOp::GaussianNll { scale, floor } => Op::GaussianNll { rows: s(i[0]).0, cols: s(i[0]).1, scale, floor },
                GOp::Gumbel { tau, noise, stream } => {
                    let n = self.tensors[i[1]].len();
                    if noise {
                        Op::Gumbel { n, tau, stream }
                    } else {
                        out.push(Launch { op: Op::Scale { n, alpha: 1.0 / tau }, args: vec![Some(i[1]), Some(o[0])] });
                        continue;
                    }
                }
                GOp::SoftClamp { limit } => {
                    let n = self.tensors[i[0]].len();
                    out.push(Launch { op: Op::Scale { n, alpha: 1.0 / limit }, args: vec![Some(i[0]), Some(o[1])] });
                    out.push(Launch { op: Op::ActForward { n, act: Act::Tanh }, args: vec![Some(o[1]), Some(o[2])] });
                    out.push(Launch { op: Op::Scale { n, alpha: limit }, args: vec![Some(o[2]), Some(o[0])] });
                    continue;
                }
                GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. } => {
                    cnn::forward(self, n, &mut out);
                    continue;
                }
                GOp::ClassLinear { act } => {
                    mixture::class_linear_forward(self, n, act, &mut out);
                    continue;
                }
                GOp::RepeatRows { .. }
                | GOp::WeightedSum { .. }
                | GOp::CategoricalKl { .. }
                | GOp::ConsistencyKl { .. }
                | GOp::KlGaussians { .. } => mixture::forward_op(self, n),
            };
            out.push(Launch { op, args: i.iter().chain(o.iter()).map(|&t| Some(t)).collect() });
        }
        out
    }

    /// Which tensors depend on a parameter (and so need a gradient).
    fn needs_grad(&self) -> Vec<bool> {
        let mut need: Vec<bool> = self.tensors.iter().map(|t| t.role == Role::Param).collect();
        for n in &self.nodes {
            let differentiable_inputs: &[usize] = match n.op {
                GOp::Linear { .. } => &[0, 1, 2],
                GOp::ClassLinear { .. } => &[0, 2, 3, 4],
                GOp::Concat => &[0, 1],
                GOp::Softmax => &[0],
                GOp::Reparam { .. } => &[1, 2],
                GOp::LabelMix | GOp::StraightThrough => &[0],
                GOp::SoftClamp { .. } => &[0],
                GOp::Gumbel { .. } => &[1],
                ref op @ (GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. }) => {
                    cnn::differentiable(op)
                }
                GOp::Lstm | GOp::KlGaussians { .. } => &[0, 1, 2, 3],
                // a loss's per-row output depends on its inputs (weighted sums consume it)
                GOp::RepeatRows { .. } | GOp::Bce { .. } | GOp::Ce { .. } | GOp::CategoricalKl { .. } | GOp::ConsistencyKl { .. } => &[0],
                GOp::Kl { .. } | GOp::GaussianNll { .. } | GOp::WeightedSum { .. } => &[0, 1],
                _ => &[],
            };
            if differentiable_inputs.iter().any(|&k| n.inputs.get(k).is_some_and(|&t| need[t])) {
                for &o in &n.outputs {
                    need[o] = true;
                }
            }
        }
        need
    }

    /// Appends the backward pass: returns its kernels and, for each parameter (in
    /// `self.params` order), the tensor holding its gradient (role `ParamGrad`).
    pub fn backward_launches(&mut self) -> (Vec<Launch>, Vec<TensorId>) {
        let need = self.needs_grad();
        let mut ad = Autodiff { grad: vec![None; self.tensors.len()], launches: Vec::new() };
        // Parameter gradients: dedicated tensors, written (not accumulated) by their first
        // contribution in each step.
        let mut param_grads = Vec::new();
        for p in self.params.clone() {
            let shape = self.tensors[p.tensor].shape.clone();
            let name = format!("{}.grad", self.tensors[p.tensor].name);
            let g = self.tensor(name, &shape, DType::F32, Role::ParamGrad { param: p.tensor });
            ad.grad.resize(self.tensors.len(), None);
            ad.grad[p.tensor] = Some(Grad { t: g, written: false });
            param_grads.push(g);
        }
        ad.grad.resize(self.tensors.len(), None);

        for n in self.nodes.clone().iter().rev() {
            match n.op {
                // Losses seed the gradients they computed in the forward pass (weighted by a
                // per-row gradient when they feed a weighted sum, see `mixture`).
                GOp::Bce { .. }
                | GOp::Ce { .. }
                | GOp::Kl { .. }
                | GOp::GaussianNll { .. }
                | GOp::CategoricalKl { .. }
                | GOp::ConsistencyKl { .. }
                | GOp::KlGaussians { .. } => mixture::loss_backward(self, &mut ad, &need, n),
                GOp::RepeatRows { .. } | GOp::WeightedSum { .. } => mixture::backward(self, &mut ad, &need, n),
                GOp::Linear { act } => self.linear_backward(&mut ad, &need, n, act),
                GOp::ClassLinear { act } => mixture::class_linear_backward(self, &mut ad, &need, n, act),
                GOp::Concat
                | GOp::Softmax
                | GOp::Reparam { .. }
                | GOp::LabelMix
                | GOp::SoftClamp { .. }
                | GOp::StraightThrough
                | GOp::Gumbel { .. } => self.last_axis_backward(&mut ad, &need, n),
                GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. } => {
                    cnn::backward(self, &mut ad, &need, n)
                }
                GOp::Lstm => self.lstm_backward(&mut ad, &need, n),
                GOp::GatherU8 { .. } | GOp::GatherF32 { .. } | GOp::GatherF16 { .. } | GOp::Fill { .. } | GOp::ShiftScale { .. } => {}
            }
        }
        (ad.launches, param_grads)
    }

    /// dz = dy * act'(y); dW = x^T dz and db = colsum(dz) (written or accumulated); dx = dz W^T.
    fn linear_backward(&mut self, ad: &mut Autodiff, need: &[bool], n: &Node, act: Act) {
        let (i, o) = (&n.inputs, &n.outputs);
        let Some(dy) = ad.grad_of(o[0]) else { return };
        let (rows, inp) = self.linear_rows(i[0], i[1]);
        let out = self.tensors[i[1]].shape[1];
        let dz = self.act_grad(ad, o[0], dy, act, rows * out);
        self.linear_grads(ad, need, [i[0], i[1]], i.get(2).copied(), dz, (rows, inp, out));
    }

    /// The gradient before the activation, dy * act'(y) for y = act(z) (`y` [n elements]), in a
    /// new temporary; dy itself for the identity.
    pub(super) fn act_grad(&mut self, ad: &mut Autodiff, y: TensorId, dy: TensorId, act: Act, n: usize) -> TensorId {
        if act == Act::Identity {
            return dy;
        }
        let shape = self.tensors[y].shape.clone();
        let dz = self.temp(format!("{}.dz", self.tensors[y].name), &shape, DType::F32);
        ad.launches.push(Launch { op: Op::ActBackward { n, act }, args: vec![Some(y), Some(dy), Some(dz)] });
        dz
    }

    /// The gradients of z = x W (+ b) from dz, where needed: dW = x^T dz and db = colsum(dz),
    /// written or accumulated, and dx = dz W^T; `(rows, inp, out)` = x's rows, W's rows and
    /// columns.
    pub(super) fn linear_grads(
        &mut self,
        ad: &mut Autodiff,
        need: &[bool],
        [x, w]: [TensorId; 2],
        b: Option<TensorId>,
        dz: TensorId,
        (rows, inp, out): (usize, usize, usize),
    ) {
        let beta = |acc: bool| if acc { 1.0 } else { 0.0 };
        if need[w] {
            let (gw, acc) = ad.target(self, w);
            ad.launches.push(Launch {
                op: Op::Gemm(Gemm::new(inp, out, rows).trans(true, false).scaled(1.0, beta(acc))),
                args: vec![Some(x), Some(dz), None, Some(gw)],
            });
        }
        if let Some(b) = b.filter(|&b| need[b]) {
            let (gb, acc) = ad.target(self, b);
            ad.launches.push(Launch { op: Op::ColSum { rows, cols: out, accumulate: acc }, args: vec![Some(dz), Some(gb)] });
        }
        if need[x] {
            let (gx, acc) = ad.target(self, x);
            ad.launches.push(Launch {
                op: Op::Gemm(Gemm::new(rows, inp, out).trans(false, true).scaled(1.0, beta(acc))),
                args: vec![Some(dz), Some(w), None, Some(gx)],
            });
        }
    }

    /// The ops that act row by row on the last axis (or elementwise): concat, softmax, the
    /// reparameterisation, label mixing, the soft clamp and the straight-through one-hot.
    fn last_axis_backward(&mut self, ad: &mut Autodiff, need: &[bool], n: &Node) {
        let (i, o) = (&n.inputs, &n.outputs);
        match n.op {
            GOp::Concat => {
                let Some(dc) = ad.grad_of(o[0]) else { return };
                let (rows, ca) = last_axis(&self.tensors[i[0]].shape);
                let cb = last_axis(&self.tensors[i[1]].shape).1;
                let (sa, sb) = (self.tensors[i[0]].shape.clone(), self.tensors[i[1]].shape.clone());
                let da = self.temp(format!("{}.grad_a", self.tensors[o[0]].name), &sa, DType::F32);
                let db = self.temp(format!("{}.grad_b", self.tensors[o[0]].name), &sb, DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches.push(Launch { op: Op::SplitCols { rows, cols_a: ca, cols_b: cb }, args: vec![Some(dc), Some(da), Some(db)] });
                if need[i[0]] {
                    ad.contribute(self, i[0], da);
                }
                if need[i[1]] {
                    ad.contribute(self, i[1], db);
                }
            }
            GOp::Softmax => {
                let Some(dy) = ad.grad_of(o[0]) else { return };
                if !need[i[0]] {
                    return;
                }
                let (rows, cols) = last_axis(&self.tensors[i[0]].shape);
                let shape = self.tensors[i[0]].shape.clone();
                let dx = self.temp(format!("{}.grad_in", self.tensors[o[0]].name), &shape, DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches.push(Launch { op: Op::SoftmaxBackward { rows, cols }, args: vec![Some(o[0]), Some(dy), Some(dx)] });
                ad.contribute(self, i[0], dx);
            }
            GOp::Reparam { .. } => {
                let Some(dz) = ad.grad_of(o[0]) else { return };
                let shape = self.tensors[i[1]].shape.clone();
                let n = self.tensors[i[1]].len();
                let dmu = self.temp(format!("{}.grad_mu", self.tensors[o[0]].name), &shape, DType::F32);
                let dlv = self.temp(format!("{}.grad_logvar", self.tensors[o[0]].name), &shape, DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches
                    .push(Launch { op: Op::ReparamBackward { n }, args: vec![Some(dz), Some(i[2]), Some(o[1]), Some(dmu), Some(dlv)] });
                if need[i[1]] {
                    ad.contribute(self, i[1], dmu);
                }
                if need[i[2]] {
                    ad.contribute(self, i[2], dlv);
                }
            }
            GOp::LabelMix => {
                let Some(dy) = ad.grad_of(o[0]) else { return };
                if !need[i[0]] {
                    return;
                }
                let (rows, classes) = rows_cols(&self.tensors[i[0]].shape);
                let dpi = self.temp(format!("{}.grad_pi", self.tensors[o[0]].name), &[rows, classes], DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches.push(Launch { op: Op::LabelMixBackward { rows, classes }, args: vec![Some(dy), Some(i[1]), Some(dpi)] });
                ad.contribute(self, i[0], dpi);
            }
            GOp::StraightThrough => {
                // the estimator: the one-hot's gradient becomes p's as it is (no kernel)
                let Some(dy) = ad.grad_of(o[0]) else { return };
                if need[i[0]] {
                    ad.contribute(self, i[0], dy);
                }
            }
            GOp::Gumbel { tau, .. } => {
                // y = (logits + g) / tau: dlogits = dy / tau (the noise does not depend on logits)
                let Some(dy) = ad.grad_of(o[0]) else { return };
                if !need[i[1]] {
                    return;
                }
                let shape = self.tensors[i[1]].shape.clone();
                let n = self.tensors[i[1]].len();
                let dx = self.temp(format!("{}.grad_in", self.tensors[o[0]].name), &shape, DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches.push(Launch { op: Op::Scale { n, alpha: 1.0 / tau }, args: vec![Some(dy), Some(dx)] });
                ad.contribute(self, i[1], dx);
            }
            GOp::SoftClamp { .. } => {
                // d/dx [L tanh(x / L)] = 1 - tanh^2(x / L): one act_backward on t
                let Some(dy) = ad.grad_of(o[0]) else { return };
                if !need[i[0]] {
                    return;
                }
                let shape = self.tensors[i[0]].shape.clone();
                let n = self.tensors[i[0]].len();
                let dx = self.temp(format!("{}.grad_in", self.tensors[o[0]].name), &shape, DType::F32);
                ad.grad.resize(self.tensors.len(), None);
                ad.launches.push(Launch { op: Op::ActBackward { n, act: Act::Tanh }, args: vec![Some(o[2]), Some(dy), Some(dx)] });
                ad.contribute(self, i[0], dx);
            }
            _ => unreachable!("not a last-axis op: {:?}", n.op),
        }
    }

    fn lstm_backward(&mut self, ad: &mut Autodiff, need: &[bool], n: &Node) {
        let (i, o) = (&n.inputs, &n.outputs);
        // BPTT gives the pre-activation gate gradients (= d xproj, which the Linear
        // before this node turns into dW_ih, db and dx); dW_hh = hprev^T dgates.
        let Some(dh_seq) = ad.grad_of(o[0]) else { return };
        let sh = self.tensors[o[0]].shape.clone();
        let (b, t, hid) = (sh[0], sh[1], sh[2]);
        let name = self.tensors[o[0]].name.clone();
        let dgates = self.temp(format!("{name}.dgates"), &[b, t, 4 * hid], DType::F32);
        let dh0 = self.temp(format!("{name}.grad_h0"), &[b, hid], DType::F32);
        let dc0 = self.temp(format!("{name}.grad_c0"), &[b, hid], DType::F32);
        ad.grad.resize(self.tensors.len(), None);
        ad.launches.push(Launch {
            op: Op::LstmBackward { batch: b, steps: t, hidden: hid },
            args: vec![Some(o[2]), Some(o[1]), Some(i[3]), Some(i[1]), Some(dh_seq), Some(dgates), Some(dh0), Some(dc0)],
        });
        if need[i[1]] {
            let (gw, acc) = ad.target(self, i[1]);
            let beta = if acc { 1.0 } else { 0.0 };
            ad.launches.push(Launch {
                op: Op::Gemm(Gemm::new(hid, 4 * hid, b * t).trans(true, false).scaled(1.0, beta)),
                args: vec![Some(o[3]), Some(dgates), None, Some(gw)],
            });
        }
        for (k, d) in [(0, dgates), (2, dh0), (3, dc0)] {
            if need[i[k]] {
                ad.contribute(self, i[k], d);
            }
        }
    }
}
