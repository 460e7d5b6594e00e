//! Graph ops of the convolutional family: 2-D convolution, transposed convolution, batch
//! normalisation and dropout, with their lowering to kernels and their backward passes.
//!
//! Tensors are NHWC and flat per sample (`[batch, h, w, c]`, which a dense layer sees as
//! `batch x (h*w*c)`), so flatten and reshape cost nothing. A transposed convolution is stored
//! as the convolution it is the adjoint of (from its output back to its input), so the same
//! three kernels serve both: its forward is that convolution's backward-input kernel.
//!
//! Batch-norm running statistics are parameters (`{name}.running_mean`, `.running_var`) so
//! they live in the parameter store and every checkpoint; no op differentiates them, their
//! gradient stays 0 and RMSprop / Adam leave them unchanged. In training mode the batch
//! statistics normalise and the running averages are updated in the forward pass; inference
//! mode (evaluation, scoring, generation) normalises with the running statistics. Dropout is
//! active in training mode only.

use super::autodiff::Autodiff;
use super::{GOp, Graph, Init, Launch, Node, TensorId};
use crate::backend::{Act, Conv2d, DType, Op, Padding};
use crate::error::{Error, Result};

/// Running-average weight of the current batch (PyTorch's default; Keras' 0.99 "momentum"
/// is 0.01 here, which needs far longer runs before evaluation is meaningful).
pub const BN_MOMENTUM: f32 = 0.1;
pub const BN_EPS: f32 = 1e-3;

/// Height, width and channels of a feature map.
pub type Hwc = (usize, usize, usize);

impl Graph {
    /// The weight and, when `bias_len` is given, the bias of a convolution.
    fn conv_params(&mut self, name: &str, c: &Conv2d, bias_len: Option<usize>) -> Vec<TensorId> {
        let taps = c.kh * c.kw;
        let mut p = vec![self.param(
            &format!("{name}.weight"),
            &[c.kh, c.kw, c.in_c, c.out_c],
            Init::GlorotUniform { fan_in: taps * c.in_c, fan_out: taps * c.out_c },
        )];
        if let Some(n) = bias_len {
            p.push(self.param(&format!("{name}.bias"), &[n], Init::Zeros));
        }
        p
    }

    fn check_map(&self, name: &str, x: TensorId, hwc: Hwc) -> Result<usize> {
        let batch = self.shape(x)[0];
        let len = self.tensors[x].len();
        if len != batch * hwc.0 * hwc.1 * hwc.2 {
            return Err(Error::Invalid(format!(
                "layer '{name}': input has {} values per sample, a {}x{}x{} feature map needs {}",
                len / batch.max(1),
                hwc.0,
                hwc.1,
                hwc.2,
                hwc.0 * hwc.1 * hwc.2
            )));
        }
        Ok(batch)
    }

    /// A convolution with `out_c` filters of `k x k` (params `{name}.weight` [k, k, in_c,
    /// out_c], Glorot, and `{name}.bias` if `bias`: leave it out before a batch norm, which
    /// cancels it); returns the output and its shape.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        &mut self,
        name: &str,
        x: TensorId,
        input: Hwc,
        out_c: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        bias: bool,
    ) -> Result<(TensorId, Hwc)> {
        let batch = self.check_map(name, x, input)?;
        let conv = Conv2d::new(name, batch, input, out_c, k, stride, padding)?;
        let params = self.conv_params(name, &conv, bias.then_some(out_c));
        let y = self.temp(name.into(), &[batch, conv.out_h, conv.out_w, out_c], DType::F32);
        self.push(GOp::Conv2d { conv }, [vec![x], params].concat(), vec![y]);
        Ok((y, (conv.out_h, conv.out_w, out_c)))
    }

    /// A transposed convolution (the decoder's upsampling): `Same` padding multiplies the size
    /// by the stride (14x14 -> 28x28 at stride 2), `Valid` gives `(in - 1) * stride + k`.
    /// Params `{name}.weight` [k, k, out_c, in_c] and, if `bias`, `{name}.bias` [out_c].
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose2d(
        &mut self,
        name: &str,
        x: TensorId,
        input: Hwc,
        out_c: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        bias: bool,
    ) -> Result<(TensorId, Hwc)> {
        let batch = self.check_map(name, x, input)?;
        let (h, w) = match padding {
            Padding::Same => (input.0 * stride, input.1 * stride),
            Padding::Valid => ((input.0 - 1) * stride + k, (input.1 - 1) * stride + k),
        };
        // the convolution from this layer's output back to its input
        let conv = Conv2d::new(name, batch, (h, w, out_c), input.2, k, stride, padding)?;
        if (conv.out_h, conv.out_w) != (input.0, input.1) {
            return Err(Error::Invalid(format!(
                "layer '{name}': no {k}x{k} stride-{stride} transposed convolution maps {}x{} to {h}x{w}",
                input.0, input.1
            )));
        }
        let params = self.conv_params(name, &conv, bias.then_some(out_c));
        let y = self.temp(name.into(), &[batch, h, w, out_c], DType::F32);
        self.push(GOp::ConvTranspose2d { conv }, [vec![x], params].concat(), vec![y]);
        Ok((y, (h, w, out_c)))
    }

    /// Batch normalisation over the last `channels` values of each position, then `act`;
    /// params `{name}.gamma`, `.beta` and the running statistics.
    pub fn batch_norm(&mut self, name: &str, x: TensorId, channels: usize, act: Act, training: bool) -> TensorId {
        let gamma = self.param(&format!("{name}.gamma"), &[channels], Init::Ones);
        let beta = self.param(&format!("{name}.beta"), &[channels], Init::Zeros);
        let rm = self.param(&format!("{name}.running_mean"), &[channels], Init::Zeros);
        let rv = self.param(&format!("{name}.running_var"), &[channels], Init::Ones);
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        let stats = self.temp(format!("{name}.stats"), &[2, channels], DType::F32);
        let mut outs = vec![y, stats];
        if training {
            // the chunks' statistics (Op::BatchNormPartial)
            let chunks = crate::backend::ops::bn_chunks(self.tensors[x].len() / channels);
            outs.push(self.temp(format!("{name}.partial"), &[chunks, 2, channels], DType::F32));
        }
        // a second pass sharing the layer (the consistency term's perturbed batch) normalises by
        // its own batch statistics but leaves the running ones to the clean pass: momentum 0
        let momentum = if self.in_shared_scope() { 0.0 } else { BN_MOMENTUM };
        self.push(GOp::BatchNorm { channels, act, momentum, eps: BN_EPS, training }, vec![x, gamma, beta, rm, rv], outs);
        y
    }

    /// Inverted dropout (kept units scaled by 1 / (1 - rate)) in training mode; the identity
    /// otherwise. `stream` separates its random draws from the graph's other ones.
    pub fn dropout(&mut self, name: &str, counter: TensorId, x: TensorId, rate: f32, stream: u32, training: bool) -> TensorId {
        if !training || rate == 0.0 {
            return x;
        }
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        let mask = self.temp(format!("{name}.mask"), &shape, DType::F32);
        self.push(GOp::Dropout { rate, stream }, vec![counter, x], vec![y, mask]);
        y
    }
}

fn all(n: &Node) -> Vec<Option<TensorId>> {
    n.inputs.iter().chain(&n.outputs).map(|&t| Some(t)).collect()
}

/// A convolution's kernel arguments: x, w, the bias or the placeholder, y.
fn conv_args(n: &Node) -> (Vec<Option<TensorId>>, bool) {
    let bias = n.inputs.len() > 2;
    (vec![Some(n.inputs[0]), Some(n.inputs[1]), n.inputs.get(2).copied(), Some(n.outputs[0])], bias)
}

/// The kernels of one CNN node's forward pass.
pub(super) fn forward(g: &Graph, n: &Node, out: &mut Vec<Launch>) {
    let (i, o) = (&n.inputs, &n.outputs);
    match n.op {
        GOp::Conv2d { conv } => {
            let (args, bias) = conv_args(n);
            out.push(Launch { op: Op::Conv2dForward { conv, bias }, args });
        }
        GOp::ConvTranspose2d { conv } => {
            let (args, bias) = conv_args(n);
            out.push(Launch { op: Op::Conv2dBackwardInput { conv, bias }, args });
        }
        GOp::BatchNorm { channels, act, momentum, eps, training } => {
            let rows = g.tensors[i[0]].len() / channels;
            if training {
                let chunks = crate::backend::ops::bn_chunks(rows);
                out.push(Launch { op: Op::BatchNormPartial { rows, cols: channels, chunks }, args: vec![Some(i[0]), Some(o[2])] });
                out.push(Launch {
                    op: Op::BatchNormStats { rows, cols: channels, chunks, momentum, eps },
                    args: vec![Some(o[2]), Some(i[3]), Some(i[4]), Some(o[1])],
                });
            } else {
                out.push(Launch { op: Op::BatchNormRunning { cols: channels, eps }, args: vec![Some(i[3]), Some(i[4]), Some(o[1])] });
            }
            out.push(Launch {
                op: Op::BatchNormForward { rows, cols: channels, act },
                args: vec![Some(i[0]), Some(o[1]), Some(i[1]), Some(i[2]), Some(o[0])],
            });
        }
        GOp::Dropout { rate, stream } => out.push(Launch { op: Op::Dropout { n: g.tensors[i[1]].len(), rate, stream }, args: all(n) }),
        _ => unreachable!("not a CNN op"),
    }
}

/// Inputs of a CNN node that gradients flow to.
pub(super) fn differentiable(op: &GOp) -> &'static [usize] {
    match op {
        GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } => &[0, 1, 2],
        GOp::Dropout { .. } => &[1],
        _ => &[],
    }
}

impl Autodiff {
    /// A fresh tensor shaped like `t` for a gradient, named after `node_out` (the op's output).
    fn fresh(&mut self, g: &mut Graph, t: TensorId, node_out: TensorId, suffix: &str) -> TensorId {
        let shape = g.tensors[t].shape.clone();
        let name = format!("{}.{suffix}", g.tensors[node_out].name);
        self.scratch(g, name, &shape)
    }

    /// A fresh f32 temporary of the backward pass (gradients, partial sums).
    fn scratch(&mut self, g: &mut Graph, name: String, shape: &[usize]) -> TensorId {
        let d = g.temp(name, shape, DType::F32);
        self.grad.resize(g.tensors.len(), None);
        d
    }
}

/// Appends the backward kernels of one CNN node (reverse order of the forward pass).
pub(super) fn backward(g: &mut Graph, ad: &mut Autodiff, need: &[bool], n: &Node) {
    let (i, o) = (&n.inputs, &n.outputs);
    let Some(dy) = ad.grad_of(o[0]) else { return };
    match n.op {
        GOp::Conv2d { conv } | GOp::ConvTranspose2d { conv } => {
            let transposed = matches!(n.op, GOp::ConvTranspose2d { .. });
            // In the convolution's terms: `big` is its input, `small` its output.
            let (big, small) = if transposed { (dy, i[0]) } else { (i[0], dy) };
            if need[i[1]] {
                let (gw, acc) = ad.target(g, i[1]);
                // split-K over runs of samples when the batch x pixels reduction is long
                let samples = crate::backend::ops::conv_weight_split_samples(&conv);
                let runs = conv.batch.div_ceil(samples);
                if runs > 1 {
                    let part = ad.scratch(g, format!("{}.grad_weight_runs", g.tensors[o[0]].name), &[runs, conv.w_len()]);
                    ad.launches.push(Launch {
                        op: Op::Conv2dBackwardWeightSplit { conv, samples },
                        args: vec![Some(big), Some(small), None, Some(part)],
                    });
                    ad.launches.push(Launch {
                        op: Op::SumSlices { n: conv.w_len(), slices: runs, accumulate: acc },
                        args: vec![Some(part), Some(gw)],
                    });
                } else {
                    ad.launches.push(Launch {
                        op: Op::Conv2dBackwardWeight { conv, accumulate: acc },
                        args: vec![Some(big), Some(small), None, Some(gw)],
                    });
                }
            }
            if i.len() > 2 && need[i[2]] {
                let (gb, acc) = ad.target(g, i[2]);
                let (rows, cols) = if transposed {
                    (conv.batch * conv.in_h * conv.in_w, conv.in_c)
                } else {
                    (conv.batch * conv.out_h * conv.out_w, conv.out_c)
                };
                ad.launches.push(Launch { op: Op::ColSum { rows, cols, accumulate: acc }, args: vec![Some(dy), Some(gb)] });
            }
            if need[i[0]] {
                let dx = ad.fresh(g, i[0], o[0], "grad_in");
                let op = if transposed { Op::Conv2dForward { conv, bias: false } } else { Op::Conv2dBackwardInput { conv, bias: false } };
                ad.launches.push(Launch { op, args: vec![Some(dy), Some(i[1]), None, Some(dx)] });
                ad.contribute(g, i[0], dx);
            }
        }
        GOp::BatchNorm { channels, act, training, .. } => {
            // Inference-mode graphs are never differentiated (evaluation has no optimizer).
            assert!(training, "batch norm in inference mode has no backward pass");
            let rows = g.tensors[i[0]].len() / channels;
            let dx = ad.fresh(g, i[0], o[0], "grad_in");
            let dgamma = ad.fresh(g, i[1], o[0], "grad_gamma");
            let dbeta = ad.fresh(g, i[2], o[0], "grad_beta");
            let chunks = crate::backend::ops::bn_chunks(rows);
            let part = ad.scratch(g, format!("{}.grad_partial", g.tensors[o[0]].name), &[chunks, 2, channels]);
            ad.launches.push(Launch {
                op: Op::BatchNormBackwardPartial { rows, cols: channels, chunks, act },
                args: vec![Some(i[0]), Some(o[1]), Some(o[0]), Some(dy), Some(part)],
            });
            ad.launches.push(Launch {
                op: Op::BatchNormBackwardReduce { cols: channels, chunks },
                args: vec![Some(part), Some(dgamma), Some(dbeta)],
            });
            ad.launches.push(Launch {
                op: Op::BatchNormBackward { rows, cols: channels, act },
                args: vec![Some(i[0]), Some(o[1]), Some(i[1]), Some(o[0]), Some(dy), Some(dgamma), Some(dbeta), Some(dx)],
            });
            for (k, d) in [(1, dgamma), (2, dbeta)] {
                if need[i[k]] {
                    ad.contribute(g, i[k], d);
                }
            }
            if need[i[0]] {
                ad.contribute(g, i[0], dx);
            }
        }
        GOp::Dropout { .. } => {
            if need[i[1]] {
                let dx = ad.fresh(g, i[1], o[0], "grad_in");
                let len = g.tensors[dx].len();
                ad.launches.push(Launch { op: Op::Mul { n: len }, args: vec![Some(dy), Some(o[1]), Some(dx)] });
                ad.contribute(g, i[1], dx);
            }
        }
        _ => unreachable!("not a CNN op"),
    }
}
