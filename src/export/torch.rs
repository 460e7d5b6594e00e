//! `ssvae export --to torch`: `ssvae_model.py`, a self-contained module (torch only; the
//! `safetensors` package is used when installed, else a 20-line reader) that interprets the
//! run's layer list ([`super::plan`], embedded as JSON) with torch ops, and
//! `weights.safetensors`, the parameters under their checkpoint names and layouts.

use super::plan;
use super::Input;
use crate::error::{Error, Result};
use crate::model::{Family, ModelSpec};
use safetensors::tensor::{Dtype, TensorView};

/// The module's source for `spec`.
pub fn module(spec: &ModelSpec, input: &Input, class_names: &[String]) -> Result<String> {
    let (dec, out) =
        if spec.has_decoder() { plan::decoder(spec, input.image_shape()).map(|(l, o)| (l, Some(o)))? } else { (Vec::new(), None) };
    let (image, scaling) = match input {
        Input::Image(_) => (true, None),
        Input::Real { scaling, .. } => (false, scaling.clone()),
    };
    let config = serde_json::json!({
        "model": spec.name(),
        "input_shape": input.dims(),
        "image_input": image,
        "flatten_input": spec.family == Family::Dense && image,
        "scaling": scaling,
        "classes": spec.classes,
        "class_names": class_names,
        "latent": spec.latent,
        "has_classifier": spec.has_classifier(),
        "has_decoder": spec.has_decoder(),
        "decoder_takes_pi": spec.decoder_takes_pi(),
        "per_step": spec.family == Family::Rnn,
        "logvar_limit": spec.logvar_limit,
        "bn_eps": crate::graph::BN_EPS,
        "encoder": plan::encoder_trunk(spec)?,
        "decoder": dec,
        "output": out,
    });
    let json = serde_json::to_string_pretty(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(TEMPLATE.replace("@CONFIG@", &json))
}

/// The parameters as a safetensors file (no optimizer state), with `metadata`.
pub fn weights(tensors: &[(String, Vec<usize>, Vec<f32>)], metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let mut views = Vec::new();
    for (name, shape, v) in tensors {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(v)).map_err(|e| Error::Invalid(e.to_string()))?,
        ));
    }
    let info = metadata.iter().cloned().collect();
    safetensors::serialize(views, Some(info)).map_err(|e| Error::Invalid(e.to_string()))
}

const TEMPLATE: &str = r#####""""A model exported by `ssvae export --to torch` (ssvae: semi-supervised VAEs).

    import ssvae_model
    model = ssvae_model.load("EXPORT_DIR")        # an nn.Module in eval mode
    probs, mu, logvar = model(x)                  # x: RAW data, see below; None where absent
    mean, var = model.decode(z, pi)               # var is None for Bernoulli decoders

x is raw data: images as NHWC values 0..255 (float or uint8), tables as [n, features] and
series windows as [n, steps, channels] in the data's units; the run's scaling (bytes / 255 or
its standardizer) happens inside. `probs` are the class probabilities (recurrent models: the
window's, the softmax of the mean over steps of log p_t, as `ssvae predict`); mu and logvar
are the posterior of z (per step for recurrent models). The decoder takes z and, for SS
models, pi (one-hot or probabilities; per step for recurrent models) and returns the
reconstruction in the model's scaled units. Needs torch; safetensors when installed.
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

CONFIG = json.loads(r"""@CONFIG@""")


def _read_safetensors(path):
    try:
        from safetensors.torch import load_file

        return load_file(path)
    except ImportError:
        with open(path, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        out = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            raw = bytearray(data[8 + n + a : 8 + n + b])
            out[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(t["shape"]).clone()
        return out


class SsvaeModel(torch.nn.Module):
    def __init__(self, weights, config=CONFIG):
        super().__init__()
        self.config = config
        self._names = {}
        for name, t in weights.items():
            key = name.replace(".", "__")
            self._names[name] = key
            self.register_buffer(key, t.to(torch.float32))
        s = config.get("scaling")
        if s:
            std = torch.tensor(s["std"], dtype=torch.float32)
            self.register_buffer("_mean", torch.tensor(s["mean"], dtype=torch.float32))
            # as the run: (x - mean) * (1 / std); a constant channel (std 0) maps to 0
            self.register_buffer("_inv_std", torch.where(std > 0, 1.0 / std, torch.zeros_like(std)))
        self.eval()

    def w(self, name):
        return getattr(self, self._names[name])

    def _scale(self, x):
        c = self.config
        x = torch.as_tensor(x).to(torch.float32)
        if c["image_input"]:
            x = x / 255.0
            if c["flatten_input"]:
                x = x.reshape(x.shape[0], -1)
        elif c.get("scaling"):
            x = (x - self._mean) * self._inv_std
            if c["scaling"].get("clip") is not None:
                lim = c["scaling"]["clip"]
                x = x.clamp(-lim, lim)
        return x

    def _lstm(self, x, name):
        w_ih, w_hh, b = self.w(name + ".w_ih"), self.w(name + ".w_hh"), self.w(name + ".bias")
        hidden = w_hh.shape[0]
        xproj = x @ w_ih + b
        h = x.new_zeros(x.shape[0], hidden)
        c = x.new_zeros(x.shape[0], hidden)
        out = []
        for t in range(x.shape[1]):
            z = xproj[:, t] + h @ w_hh
            i, f, g, o = z.split(hidden, dim=-1)  # gate order i, f, g, o
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)

    def _layers(self, x, layers):
        eps = self.config["bn_eps"]
        for l in layers:
            op = l["op"]
            if op == "dense":
                x = x @ self.w(l["name"] + ".weight")
                if l["bias"]:
                    x = x + self.w(l["name"] + ".bias")
                if l["relu"]:
                    x = torch.relu(x)
            elif op == "bn_relu":
                n = l["name"]
                x = F.batch_norm(x, self.w(n + ".running_mean"), self.w(n + ".running_var"), self.w(n + ".gamma"), self.w(n + ".beta"), False, 0.0, eps)
                x = torch.relu(x)
            elif op == "to_nchw":
                x = x.permute(0, 3, 1, 2)
            elif op == "to_nhwc":
                x = x.permute(0, 2, 3, 1)
            elif op == "reshape":
                x = x.reshape(x.shape[0], *l["dims"])
            elif op == "conv":
                t, left, b, r = l["pads"]
                x = F.pad(x, (left, r, t, b))
                x = F.conv2d(x, self.w(l["name"] + ".weight").permute(3, 2, 0, 1), stride=l["stride"])
            elif op == "conv_transpose":
                s, k = l["stride"], l["k"]
                y = F.conv_transpose2d(x, self.w(l["name"] + ".weight").permute(3, 2, 0, 1), stride=s)
                t, left, b, r = l["pads"]
                oh, ow = l["output_padding"]
                H = s * (x.shape[2] - 1) + oh + k - t - b
                W = s * (x.shape[3] - 1) + ow + k - left - r
                y = y[:, :, t : t + H, left : left + W]
                y = F.pad(y, (0, W - y.shape[3], 0, H - y.shape[2]))
                if l["bias"]:
                    y = y + self.w(l["name"] + ".bias").view(1, -1, 1, 1)
                x = y
            elif op == "lstm":
                x = self._lstm(x, l["name"])
            elif op == "sigmoid":
                x = torch.sigmoid(x)
            else:
                raise ValueError("unknown layer " + op)
        return x

    @torch.no_grad()
    def forward(self, x):
        """Raw input -> (probs, mu, logvar); None for what the model lacks."""
        c = self.config
        h = self._layers(self._scale(x), c["encoder"])
        probs = mu = logvar = None
        if c["has_classifier"]:
            p = torch.softmax(h @ self.w("pi.weight") + self.w("pi.bias"), dim=-1)
            if c["per_step"]:
                q = torch.log(p.clamp_min(torch.finfo(torch.float32).tiny)).mean(dim=1)
                p = torch.softmax(q, dim=-1)
            probs = p
        if c["has_decoder"]:
            mu = h @ self.w("mu.weight") + self.w("mu.bias")
            logvar = h @ self.w("logvar.weight") + self.w("logvar.bias")
            lim = c["logvar_limit"]
            if lim is not None:
                logvar = lim * torch.tanh(logvar * (1.0 / lim))
        return probs, mu, logvar

    @torch.no_grad()
    def decode(self, z, pi=None):
        """z (and pi for SS models) -> (mean, var); var is None for Bernoulli decoders."""
        c = self.config
        if not c["has_decoder"]:
            raise ValueError(c["model"] + " has no decoder")
        x = torch.as_tensor(z, dtype=torch.float32)
        if c["decoder_takes_pi"]:
            if pi is None:
                raise ValueError(c["model"] + ": the decoder takes pi (one-hot or probabilities) after z")
            x = torch.cat([x, torch.as_tensor(pi, dtype=torch.float32)], dim=-1)
        h = self._layers(x, c["decoder"])
        out = c["output"]
        if out["kind"] == "bernoulli":
            return h, None
        mean = h @ self.w(out["mean"] + ".weight") + self.w(out["mean"] + ".bias")
        var = F.softplus(h @ self.w(out["var"] + ".weight") + self.w(out["var"] + ".bias")) + out["floor"]
        return mean, var


def load(directory=os.path.dirname(os.path.abspath(__file__))):
    """The model in `directory` (weights.safetensors beside this file by default)."""
    return SsvaeModel(_read_safetensors(os.path.join(directory, "weights.safetensors")))
"#####;
