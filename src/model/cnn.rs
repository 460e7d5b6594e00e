//! The convolutional family (the paper's Table 14). Layers followed by batch norm have no
//! bias (the norm's shift replaces it; a bias there gets an exactly zero gradient). Encoder: per `spec.conv` layer a 'same'
//! convolution + batch norm + relu; flatten; per `spec.hidden` width a dense layer + batch norm
//! + relu + dropout. Decoder: per hidden width but the last, in reverse, the same dense block;
//! a dense layer to the encoder's last feature map + batch norm + relu + dropout; per conv
//! layer a 'same' transposed convolution (channels mirrored, strides in the encoder's order,
//! so the upsampling comes last as in the paper) + batch norm + relu; a 1x1 transposed
//! convolution to the image's channels gives the Bernoulli logits.

use super::ModelSpec;
use crate::backend::{Act, Padding};
use crate::error::{Error, Result};
use crate::graph::{Graph, Hwc, TensorId};

/// Dropout RNG streams (the reparameterisation draws stream 0).
const ENCODER_STREAM: u32 = 1;
const DECODER_STREAM: u32 = 101;

fn image(spec: &ModelSpec) -> Hwc {
    let [h, w, c] = spec.input_shape.expect("validated: a CNN has an image shape");
    (h, w, c)
}

/// Feature-map shapes after each encoder convolution.
fn encoder_maps(spec: &ModelSpec) -> Vec<Hwc> {
    let mut s = image(spec);
    spec.conv
        .iter()
        .map(|l| {
            s = (s.0.div_ceil(l.stride), s.1.div_ceil(l.stride), l.channels);
            s
        })
        .collect()
}

fn dense_block(
    g: &mut Graph,
    name: &str,
    x: TensorId,
    width: usize,
    counter: Option<TensorId>,
    rate: f32,
    stream: u32,
    training: bool,
) -> TensorId {
    let h = g.dense_no_bias(name, x, width);
    let h = g.batch_norm(&format!("{name}.bn"), h, width, Act::Relu, training);
    match counter {
        Some(c) => g.dropout(&format!("{name}.dropout"), c, h, rate, stream, training),
        None => h,
    }
}

pub fn encoder(g: &mut Graph, spec: &ModelSpec, x: TensorId, counter: TensorId, training: bool) -> Result<TensorId> {
    let (mut h, mut shape) = (x, image(spec));
    for (i, l) in spec.conv.iter().enumerate() {
        let name = format!("conv{i}");
        let (y, s) = g.conv2d(&name, h, shape, l.channels, l.kernel, l.stride, Padding::Same, false)?;
        h = g.batch_norm(&format!("{name}.bn"), y, l.channels, Act::Relu, training);
        shape = s;
    }
    for (i, &w) in spec.hidden.iter().enumerate() {
        h = dense_block(g, &format!("enc{i}"), h, w, Some(counter), spec.dropout, ENCODER_STREAM + i as u32, training);
    }
    Ok(h)
}

pub fn decoder(g: &mut Graph, spec: &ModelSpec, dec_in: TensorId, counter: Option<TensorId>, training: bool) -> Result<TensorId> {
    let maps = encoder_maps(spec);
    let mut h = dec_in;
    let mut stream = DECODER_STREAM;
    for (i, &w) in spec.hidden.iter().rev().skip(1).enumerate() {
        h = dense_block(g, &format!("dec{i}"), h, w, counter, spec.dropout, stream, training);
        stream += 1;
    }
    let mut shape = *maps.last().expect("validated: at least one convolution");
    h = dense_block(g, "dec_map", h, shape.0 * shape.1 * shape.2, counter, spec.dropout, stream, training);
    let n = spec.conv.len();
    for (i, l) in spec.conv.iter().enumerate() {
        let name = format!("deconv{i}");
        let channels = spec.conv[n - 1 - i].channels;
        let (y, s) = g.conv_transpose2d(&name, h, shape, channels, l.kernel, l.stride, Padding::Same, false)?;
        h = g.batch_norm(&format!("{name}.bn"), y, channels, Act::Relu, training);
        shape = s;
    }
    let img = image(spec);
    if (shape.0, shape.1) != (img.0, img.1) {
        return Err(Error::Invalid(format!(
            "the CNN's decoder produces {}x{} images from the encoder's {}x{} feature map, but the input is {}x{}x{}: use image sizes divisible by the product of the strides ({:?})",
            shape.0,
            shape.1,
            maps.last().map_or(0, |m| m.0),
            maps.last().map_or(0, |m| m.1),
            img.0,
            img.1,
            img.2,
            spec.conv.iter().map(|l| l.stride).collect::<Vec<_>>()
        )));
    }
    let (out, _) = g.conv_transpose2d("out", h, shape, img.2, 1, 1, Padding::Same, true)?;
    Ok(out)
}
