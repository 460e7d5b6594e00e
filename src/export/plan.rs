//! The layers of a model in inference mode, as one list that both exporters read: the ONNX
//! writer turns each into nodes, the PyTorch module interprets the same list (written into
//! `ssvae_model.py` as JSON). It mirrors `model::build_mode` (dense), `model::cnn` and
//! `model::rnn`; tests/export.rs checks that the parameters it names are the run's.

use crate::backend::{Conv2d, Padding};
use crate::error::{Error, Result};
use crate::model::{Family, Likelihood, ModelSpec};

#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    /// y = x W (+ b), W `{name}.weight` [in, out] over the last axis; relu when asked.
    Dense {
        name: String,
        bias: bool,
        relu: bool,
    },
    /// Inference batch norm on axis 1 ([n, C] or NCHW) with `{name}.gamma`, `.beta`,
    /// `.running_mean`, `.running_var`, then relu.
    BnRelu {
        name: String,
    },
    /// NHWC -> NCHW and back.
    ToNchw,
    ToNhwc,
    /// Reshape to [-1, dims...].
    Reshape {
        dims: Vec<usize>,
    },
    /// A convolution with weight `{name}.weight` [k, k, in, out], no bias; pads
    /// [top, left, bottom, right].
    Conv {
        name: String,
        k: usize,
        stride: usize,
        pads: [usize; 4],
    },
    /// A transposed convolution with weight `{name}.weight` [k, k, out, in] (the adjoint
    /// convolution's); output [s (in - 1) + k] cropped by `pads` [top, left, bottom, right]
    /// and extended by zeros (`output_padding` [h, w]); bias `{name}.bias` when asked.
    ConvTranspose {
        name: String,
        k: usize,
        stride: usize,
        pads: [usize; 4],
        output_padding: [usize; 2],
        bias: bool,
    },
    /// An LSTM over [n, T, in] from a zero state, all steps' h: `{name}.w_ih` [in, 4H],
    /// `.w_hh` [H, 4H], `.bias` [4H], gates i, f, g, o.
    Lstm {
        name: String,
        hidden: usize,
    },
    Sigmoid,
}

fn dense(name: impl Into<String>, bias: bool, relu: bool) -> Layer {
    Layer::Dense { name: name.into(), bias, relu }
}

/// The encoder's convolutions (geometry at batch 1).
pub fn convs(spec: &ModelSpec) -> Result<Vec<Conv2d>> {
    let [h, w, c] = spec.input_shape.ok_or_else(|| Error::Invalid("a CNN run without an image shape".into()))?;
    let mut s = (h, w, c);
    let mut out = Vec::new();
    for (i, l) in spec.conv.iter().enumerate() {
        let conv = Conv2d::new(&format!("conv{i}"), 1, s, l.channels, l.kernel, l.stride, Padding::Same)?;
        s = (conv.out_h, conv.out_w, l.channels);
        out.push(conv);
    }
    Ok(out)
}

/// Pads [top, left, bottom, right] of a 'same' convolution (TensorFlow's rule: the total
/// `max((out - 1) s + k - in, 0)` split with the odd pixel after).
fn conv_pads(c: &Conv2d) -> [usize; 4] {
    let end = |out: usize, inp: usize, pad: usize, k: usize| ((out - 1) * c.stride + k).saturating_sub(inp) - pad;
    [c.pad_h, c.pad_w, end(c.out_h, c.in_h, c.pad_h, c.kh), end(c.out_w, c.in_w, c.pad_w, c.kw)]
}

/// A transposed convolution given as the convolution `c` from its output (`in_*`) back to its
/// input (`out_*`): ONNX's `s (small - 1) + output_padding + k - pad_begin - pad_end` must be
/// `big`, with pad_begin the convolution's own.
fn conv_transpose(name: &str, c: &Conv2d, bias: bool) -> Layer {
    let axis = |small: usize, big: usize, pad: usize, k: usize| -> (usize, usize) {
        // output_padding - pad_end = big - s (small - 1) - k + pad
        let d = big as i64 - (c.stride * (small - 1)) as i64 - k as i64 + pad as i64;
        if d >= 0 {
            (0, d as usize)
        } else {
            ((-d) as usize, 0)
        }
    };
    let (eh, oh) = axis(c.out_h, c.in_h, c.pad_h, c.kh);
    let (ew, ow) = axis(c.out_w, c.in_w, c.pad_w, c.kw);
    Layer::ConvTranspose { name: name.into(), k: c.kh, stride: c.stride, pads: [c.pad_h, c.pad_w, eh, ew], output_padding: [oh, ow], bias }
}

/// Encoder layers from the scaled input (dense: [n, features]; CNN: NHWC; RNN: [n, T, C]) to
/// the features the heads read.
pub fn encoder_trunk(spec: &ModelSpec) -> Result<Vec<Layer>> {
    let mut l = Vec::new();
    match spec.family {
        Family::Dense => l.extend((0..spec.hidden.len()).map(|i| dense(format!("enc{i}"), true, true))),
        Family::Cnn => {
            l.push(Layer::ToNchw);
            let cs = convs(spec)?;
            for (i, c) in cs.iter().enumerate() {
                l.push(Layer::Conv { name: format!("conv{i}"), k: c.kh, stride: c.stride, pads: conv_pads(c) });
                l.push(Layer::BnRelu { name: format!("conv{i}.bn") });
            }
            // back to NHWC, flattened per sample, as the dense layers were trained on
            l.push(Layer::ToNhwc);
            let last = cs.last().ok_or_else(|| Error::Invalid("a CNN without convolutions".into()))?;
            l.push(Layer::Reshape { dims: vec![last.out_h * last.out_w * last.out_c] });
            for i in 0..spec.hidden.len() {
                l.push(dense(format!("enc{i}"), false, false));
                l.push(Layer::BnRelu { name: format!("enc{i}.bn") });
            }
        }
        Family::Rnn => {
            let h = &spec.hidden;
            l.push(dense("enc0", true, true));
            l.push(Layer::Lstm { name: "enc_lstm".into(), hidden: h[1] });
            l.push(dense("enc1", true, true));
        }
    }
    Ok(l)
}

/// What the decoder's last layers give.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    /// Bernoulli means: the trunk ends in a sigmoid ([n, features], or NHWC for images).
    Bernoulli,
    /// Gaussian: mean `{mean}` (linear) and variance softplus(`{var}`) + floor, each a dense
    /// layer on the trunk's output.
    Gaussian { mean: String, var: String, floor: f32 },
}

/// Decoder layers from its input (concat(z, pi) or z) to the output, and the output's kind.
/// `image`: the NHWC shape the dense family's Bernoulli means are reshaped to (image runs).
pub fn decoder(spec: &ModelSpec, image: Option<[usize; 3]>) -> Result<(Vec<Layer>, Output)> {
    let mut l = Vec::new();
    let gaussian = |mean: &str, var: &str| Output::Gaussian { mean: mean.into(), var: var.into(), floor: spec.var_floor };
    match spec.family {
        Family::Dense => {
            l.extend((0..spec.hidden.len()).map(|i| dense(format!("dec{i}"), true, true)));
            if spec.likelihood == Likelihood::Gaussian {
                return Ok((l, gaussian("out", "out_var")));
            }
            l.push(dense("out", true, false));
            l.push(Layer::Sigmoid);
            if let Some([h, w, c]) = image {
                l.push(Layer::Reshape { dims: vec![h, w, c] });
            }
            Ok((l, Output::Bernoulli))
        }
        Family::Cnn => {
            let cs = convs(spec)?;
            for i in 0..spec.hidden.len().saturating_sub(1) {
                l.push(dense(format!("dec{i}"), false, false));
                l.push(Layer::BnRelu { name: format!("dec{i}.bn") });
            }
            l.push(dense("dec_map", false, false));
            l.push(Layer::BnRelu { name: "dec_map.bn".into() });
            let last = cs.last().ok_or_else(|| Error::Invalid("a CNN without convolutions".into()))?;
            l.push(Layer::Reshape { dims: vec![last.out_h, last.out_w, last.out_c] });
            l.push(Layer::ToNchw);
            // deconv i: channels mirrored, this conv's kernel and stride (model::cnn::decoder)
            let n = spec.conv.len();
            let mut shape = (last.out_h, last.out_w, last.out_c);
            for (i, c) in spec.conv.iter().enumerate() {
                let channels = spec.conv[n - 1 - i].channels;
                let big = (shape.0 * c.stride, shape.1 * c.stride, channels);
                let conv = Conv2d::new(&format!("deconv{i}"), 1, big, shape.2, c.kernel, c.stride, Padding::Same)?;
                l.push(conv_transpose(&format!("deconv{i}"), &conv, false));
                l.push(Layer::BnRelu { name: format!("deconv{i}.bn") });
                shape = big;
            }
            let [ih, iw, ic] = spec.input_shape.expect("checked by convs");
            let conv = Conv2d::new("out", 1, (ih, iw, ic), shape.2, 1, 1, Padding::Same)?;
            l.push(conv_transpose("out", &conv, true));
            l.push(Layer::Sigmoid);
            l.push(Layer::ToNhwc);
            Ok((l, Output::Bernoulli))
        }
        Family::Rnn => {
            let h = &spec.hidden;
            l.push(dense("dec0", true, true));
            l.push(Layer::Lstm { name: "dec_lstm".into(), hidden: h[1] });
            l.push(dense("dec1", true, true));
            Ok((l, gaussian("out_mean", "out_var")))
        }
    }
}
