//! The ONNX graphs of a run (opset 17, IR version 8): `encoder.onnx` (raw input -> `probs`,
//! `mu`, `logvar`) and `decoder.onnx` (`z`, `pi` -> reconstruction parameters).
//!
//! The graphs compute what the CPU reference computes in inference mode, op for op:
//! - every parameter is an initializer under its checkpoint name and in its checkpoint layout
//!   (dense weights [in, out], convolutions [k, k, in, out], LSTM [in, 4H] with gates i, f, g, o),
//!   so the initializers of the two files together are exactly the run's parameters; layout
//!   changes ONNX needs (Conv's [out, in, k, k], LSTM's i, o, f, c gate order) are `Transpose`,
//!   `Split` and `Concat` nodes on them, which runtimes fold once at load time;
//! - the input scaling is inside the encoder (bytes / 255 for images; (x - mean) * (1 / std)
//!   per channel with the run's standardizer, constant channels -> 0, robust scaling clipped to
//!   +-50), so it takes raw data;
//! - 'same' padding as TensorFlow (total padding split with the odd pixel after), batch norm
//!   with running statistics and eps = [`BN_EPS`], dropout absent (inference);
//! - the recurrent family's per-step class probabilities are pooled to window probabilities as
//!   `model::window_probs` does: softmax of the mean over steps of log max(p_t, f32::MIN_POSITIVE).
//!
//! Constants that are not parameters (means, scales, shapes) are `Constant` nodes.

use std::collections::HashMap;

use super::plan::{self, Layer, Output};
use super::proto::{self, Attr, Dim, Msg};
use super::Input;
use crate::error::{Error, Result};
use crate::graph::BN_EPS;
use crate::model::{Family, ModelSpec};

pub const OPSET: i64 = 17;
pub const IR_VERSION: i64 = 8;

/// The run's parameters by name: shape and values.
pub type Params<'a> = HashMap<&'a str, (&'a [usize], &'a [f32])>;

struct G<'a> {
    params: &'a Params<'a>,
    nodes: Vec<Msg>,
    inits: Vec<Msg>,
    added: Vec<String>,
    inputs: Vec<Msg>,
    outputs: Vec<Msg>,
    next: usize,
}

impl<'a> G<'a> {
    fn new(params: &'a Params<'a>) -> Self {
        G { params, nodes: Vec::new(), inits: Vec::new(), added: Vec::new(), inputs: Vec::new(), outputs: Vec::new(), next: 0 }
    }

    fn ops(&mut self, op: &str, inputs: &[&str], n_out: usize, attrs: &[(&str, Attr)]) -> Vec<String> {
        let id = self.next;
        self.next += 1;
        let outs: Vec<String> = (0..n_out).map(|k| format!("{}_{id}_{k}", op.to_lowercase())).collect();
        let ins: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        self.nodes.push(proto::node(op, &format!("{op}_{id}"), &ins, &outs, attrs));
        outs
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.ops(op, inputs, 1, attrs).remove(0)
    }

    /// A parameter of the run as an initializer (added once), by its checkpoint name.
    fn param(&mut self, name: &str) -> Result<String> {
        let (shape, v) = self
            .params
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("export: the run has no parameter '{name}' (is the checkpoint from this model?)")))?;
        if !self.added.iter().any(|a| a == name) {
            self.inits.push(proto::f32_tensor(name, shape, v));
            self.added.push(name.to_string());
        }
        Ok(name.to_string())
    }

    fn shape_of(&self, name: &str) -> Result<Vec<usize>> {
        self.params.get(name).map(|(s, _)| s.to_vec()).ok_or_else(|| Error::Invalid(format!("export: the run has no parameter '{name}'")))
    }

    fn cf(&mut self, dims: &[usize], v: &[f32]) -> String {
        self.op("Constant", &[], &[("value", Attr::Tensor(dims.to_vec(), v.to_vec()))])
    }
    fn scalar(&mut self, v: f32) -> String {
        self.cf(&[], &[v])
    }
    fn ci(&mut self, v: &[i64]) -> String {
        self.op("Constant", &[], &[("value", Attr::TensorI64(vec![v.len()], v.to_vec()))])
    }

    fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.inputs.push(proto::value_info(name, proto::FLOAT, dims));
        name.to_string()
    }

    /// Names `t` as a graph output.
    fn output(&mut self, t: &str, name: &str, dims: &[Dim]) {
        self.nodes.push(proto::node("Identity", &format!("output_{name}"), &[t.to_string()], &[name.to_string()], &[]));
        self.outputs.push(proto::value_info(name, proto::FLOAT, dims));
    }

    /// x W (+ b), then relu when asked: `{name}.weight` [in, out], `{name}.bias` [out].
    fn dense(&mut self, x: &str, name: &str, bias: bool, relu: bool) -> Result<String> {
        let w = self.param(&format!("{name}.weight"))?;
        let mut y = self.op("MatMul", &[x, &w], &[]);
        if bias {
            let b = self.param(&format!("{name}.bias"))?;
            y = self.op("Add", &[&y, &b], &[]);
        }
        Ok(if relu { self.op("Relu", &[&y], &[]) } else { y })
    }

    /// Batch norm in inference mode (channel axis 1: [n, C] or NCHW), then relu.
    fn bn_relu(&mut self, x: &str, name: &str) -> Result<String> {
        let ins: Vec<String> =
            ["gamma", "beta", "running_mean", "running_var"].iter().map(|p| self.param(&format!("{name}.{p}"))).collect::<Result<_>>()?;
        let y = self.op("BatchNormalization", &[x, &ins[0], &ins[1], &ins[2], &ins[3]], &[("epsilon", Attr::Float(BN_EPS))]);
        Ok(self.op("Relu", &[&y], &[]))
    }

    /// A weight [k, k, a, b] as ONNX's [b, a, k, k] (Conv: [out, in, k, k] from [k, k, in, out];
    /// ConvTranspose: [in, out, k, k] from the adjoint convolution's [k, k, out, in]).
    fn conv_weight(&mut self, name: &str) -> Result<String> {
        let w = self.param(name)?;
        Ok(self.op("Transpose", &[&w], &[("perm", Attr::Ints(vec![3, 2, 0, 1]))]))
    }

    /// Gate blocks [i | f | g | o] along `axis` reordered to ONNX's [i | o | f | c].
    fn ifgo_to_iofc(&mut self, t: &str, axis: i64) -> String {
        let p = self.ops("Split", &[t], 4, &[("axis", Attr::Int(axis))]);
        self.op("Concat", &[&p[0], &p[3], &p[1], &p[2]], &[("axis", Attr::Int(axis))])
    }

    /// An LSTM over [n, T, in] from a zero state -> [n, T, H] (params `{name}.w_ih` [in, 4H],
    /// `.w_hh` [H, 4H], `.bias` [4H]; ONNX's second bias Rb is zero).
    fn lstm(&mut self, x: &str, name: &str) -> Result<String> {
        let hidden = self.shape_of(&format!("{name}.w_hh"))?[0];
        let axis0 = self.ci(&[0]);
        let mut wr = Vec::new();
        for p in ["w_ih", "w_hh"] {
            let w = self.param(&format!("{name}.{p}"))?;
            let w = self.ifgo_to_iofc(&w, 1);
            let w = self.op("Transpose", &[&w], &[("perm", Attr::Ints(vec![1, 0]))]);
            wr.push(self.op("Unsqueeze", &[&w, &axis0], &[]));
        }
        let b = self.param(&format!("{name}.bias"))?;
        let b = self.ifgo_to_iofc(&b, 0);
        let zeros = self.cf(&[4 * hidden], &vec![0.0; 4 * hidden]);
        let b = self.op("Concat", &[&b, &zeros], &[("axis", Attr::Int(0))]);
        let b = self.op("Unsqueeze", &[&b, &axis0], &[]);
        let xt = self.op("Transpose", &[x], &[("perm", Attr::Ints(vec![1, 0, 2]))]);
        let y = self.ops("LSTM", &[&xt, &wr[0], &wr[1], &b], 1, &[("hidden_size", Attr::Int(hidden as i64))]).remove(0);
        let axis1 = self.ci(&[1]);
        let y = self.op("Squeeze", &[&y, &axis1], &[]);
        Ok(self.op("Transpose", &[&y], &[("perm", Attr::Ints(vec![1, 0, 2]))]))
    }

    fn model(self, name: &str, doc: &str, metadata: &[(String, String)]) -> Vec<u8> {
        let mut graph = Msg::default();
        for n in &self.nodes {
            graph.msg(1, n);
        }
        graph.str(2, name);
        for t in &self.inits {
            graph.msg(5, t);
        }
        graph.str(10, doc);
        for i in &self.inputs {
            graph.msg(11, i);
        }
        for o in &self.outputs {
            graph.msg(12, o);
        }
        let mut opset = Msg::default();
        opset.str(1, "").int(2, OPSET);
        let mut m = Msg::default();
        m.int(1, IR_VERSION).str(2, "ssvae").str(3, env!("CARGO_PKG_VERSION")).str(6, doc).msg(7, &graph).msg(8, &opset);
        for (k, v) in metadata {
            let mut e = Msg::default();
            e.str(1, k).str(2, v);
            m.msg(14, &e);
        }
        m.0
    }
}

const N: Dim = Dim::Named("n");

fn fixed(d: &[usize]) -> Vec<Dim> {
    std::iter::once(N).chain(d.iter().map(|&v| Dim::Fixed(v))).collect()
}

/// The raw input and its scaling; returns the scaled tensor in the model's layout (NHWC
/// flattened per sample for the dense family, [n, T, C] for series).
fn scaled_input(g: &mut G, spec: &ModelSpec, input: &Input) -> String {
    match input {
        Input::Image(shape) => {
            let x = g.input("x", &fixed(shape));
            let c = g.scalar(255.0);
            let x = g.op("Div", &[&x, &c], &[]);
            if spec.family == Family::Dense {
                let s = g.ci(&[-1, spec.input_dim as i64]);
                g.op("Reshape", &[&x, &s], &[])
            } else {
                x
            }
        }
        Input::Real { dims, scaling } => {
            let x = g.input("x", &fixed(dims));
            match scaling {
                None => x,
                Some(s) => {
                    let c = s.mean.len();
                    let m = g.cf(&[c], &s.mean);
                    let inv: Vec<f32> = s.std.iter().map(|&v| if v > 0.0 { 1.0 / v } else { 0.0 }).collect();
                    let i = g.cf(&[c], &inv);
                    let y = g.op("Sub", &[&x, &m], &[]);
                    let y = g.op("Mul", &[&y, &i], &[]);
                    match s.clip {
                        Some(l) => {
                            let (lo, hi) = (g.scalar(-l), g.scalar(l));
                            g.op("Clip", &[&y, &lo, &hi], &[])
                        }
                        None => y,
                    }
                }
            }
        }
    }
}

/// The nodes of `layers` on `x`.
fn emit(g: &mut G, x: &str, layers: &[Layer]) -> Result<String> {
    let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&x| x as i64).collect());
    let mut h = x.to_string();
    for l in layers {
        h = match l {
            Layer::Dense { name, bias, relu } => g.dense(&h, name, *bias, *relu)?,
            Layer::BnRelu { name } => g.bn_relu(&h, name)?,
            Layer::ToNchw => g.op("Transpose", &[&h], &[("perm", Attr::Ints(vec![0, 3, 1, 2]))]),
            Layer::ToNhwc => g.op("Transpose", &[&h], &[("perm", Attr::Ints(vec![0, 2, 3, 1]))]),
            Layer::Reshape { dims } => {
                let s: Vec<i64> = std::iter::once(-1).chain(dims.iter().map(|&d| d as i64)).collect();
                let s = g.ci(&s);
                g.op("Reshape", &[&h, &s], &[])
            }
            Layer::Conv { name, k, stride, pads } => {
                let w = g.conv_weight(&format!("{name}.weight"))?;
                g.op("Conv", &[&h, &w], &[("kernel_shape", ints(&[*k, *k])), ("strides", ints(&[*stride, *stride])), ("pads", ints(pads))])
            }
            Layer::ConvTranspose { name, k, stride, pads, output_padding, bias } => {
                let w = g.conv_weight(&format!("{name}.weight"))?;
                let mut ins = vec![h.clone(), w];
                if *bias {
                    ins.push(g.param(&format!("{name}.bias"))?);
                }
                let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
                g.op(
                    "ConvTranspose",
                    &ins,
                    &[
                        ("kernel_shape", ints(&[*k, *k])),
                        ("strides", ints(&[*stride, *stride])),
                        ("pads", ints(pads)),
                        ("output_padding", ints(output_padding)),
                    ],
                )
            }
            Layer::Lstm { name, .. } => g.lstm(&h, name)?,
            Layer::Sigmoid => g.op("Sigmoid", &[&h], &[]),
        };
    }
    Ok(h)
}

/// `encoder.onnx`: raw input `x` -> `probs` (classifier), `mu`, `logvar` (decoder).
pub fn encoder(spec: &ModelSpec, input: &Input, params: &Params, metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let mut g = G::new(params);
    let x = scaled_input(&mut g, spec, input);
    let h = emit(&mut g, &x, &plan::encoder_trunk(spec)?)?;
    let per_step = match (spec.family, spec.series_shape) {
        (Family::Rnn, Some([t, _])) => Some(t),
        _ => None,
    };
    let head_dims = |k: usize| match per_step {
        Some(t) => fixed(&[t, k]),
        None => fixed(&[k]),
    };
    if spec.has_classifier() {
        let logits = g.dense(&h, "pi", true, false)?;
        let mut p = g.op("Softmax", &[&logits], &[("axis", Attr::Int(-1))]);
        if per_step.is_some() {
            // model::window_probs: softmax of the mean over steps of log p_t
            let tiny = g.scalar(f32::MIN_POSITIVE);
            let q = g.op("Max", &[&p, &tiny], &[]);
            let q = g.op("Log", &[&q], &[]);
            let q = g.op("ReduceMean", &[&q], &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))]);
            p = g.op("Softmax", &[&q], &[("axis", Attr::Int(-1))]);
        }
        g.output(&p, "probs", &fixed(&[spec.classes]));
    }
    if spec.has_decoder() {
        let mu = g.dense(&h, "mu", true, false)?;
        let mut lv = g.dense(&h, "logvar", true, false)?;
        if let Some(l) = spec.logvar_limit {
            // as the graph's SoftClamp: L * tanh(raw * (1 / L))
            let (inv, lim) = (g.scalar(1.0 / l), g.scalar(l));
            let u = g.op("Mul", &[&lv, &inv], &[]);
            let t = g.op("Tanh", &[&u], &[]);
            lv = g.op("Mul", &[&t, &lim], &[]);
        }
        g.output(&mu, "mu", &head_dims(spec.latent));
        g.output(&lv, "logvar", &head_dims(spec.latent));
    }
    let doc = "ssvae encoder: raw input x (images NHWC as 0..255, tables [n, features], series [n, steps, channels] in the data's units; the scaling is inside) -> probs (class probabilities), mu and logvar (posterior of z; per step for recurrent models)";
    Ok(g.model(&format!("{}_encoder", spec.name()), doc, metadata))
}

/// `decoder.onnx`: `z` and `pi` (models whose decoder takes it) -> `mean` (Bernoulli means,
/// or Gaussian means) and `var` (Gaussian variances), in the model's (scaled) units.
pub fn decoder(spec: &ModelSpec, input: &Input, params: &Params, metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let mut g = G::new(params);
    let steps = spec.series_shape.filter(|_| spec.family == Family::Rnn).map(|[t, _]| t);
    let dims = |k: usize| match steps {
        Some(t) => fixed(&[t, k]),
        None => fixed(&[k]),
    };
    let z = g.input("z", &dims(spec.latent));
    let x = if spec.decoder_takes_pi() {
        let pi = g.input("pi", &dims(spec.classes));
        g.op("Concat", &[&z, &pi], &[("axis", Attr::Int(-1))])
    } else {
        z
    };
    let (layers, out) = plan::decoder(spec, input.image_shape())?;
    let h = emit(&mut g, &x, &layers)?;
    let out_dims = input.dims();
    match out {
        Output::Bernoulli => g.output(&h, "mean", &fixed(&out_dims)),
        Output::Gaussian { mean, var, floor } => {
            let m = g.dense(&h, &mean, true, false)?;
            let v = g.dense(&h, &var, true, false)?;
            let v = g.op("Softplus", &[&v], &[]);
            let f = g.scalar(floor);
            let v = g.op("Add", &[&v, &f], &[]);
            g.output(&m, "mean", &fixed(&out_dims));
            g.output(&v, "var", &fixed(&out_dims));
        }
    }
    let doc = "ssvae decoder: z (then pi, one-hot or probabilities, for models whose decoder takes it) -> mean (Bernoulli: sigmoid means in [0, 1]; Gaussian: means) and var (Gaussian: softplus(raw) + floor), in the model's scaled units (standardised for tables and series; NHWC / 255 for images)";
    Ok(g.model(&format!("{}_decoder", spec.name()), doc, metadata))
}
