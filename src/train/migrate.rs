//! Checkpoint migration to a classifier with more classes (anomaly feedback, see
//! [`crate::eval::feedback`]): a trained run gains output classes without starting over.
//!
//! Growing the class count changes exactly the tensors whose shape involves it: the pi head
//! (weight `[hidden, classes]` gains columns, bias `[classes]` gains entries) and the decoder's
//! first layer, whose input is concat(z, pi) (weight `[latent + classes, width]` gains rows at
//! the end, where the new pi entries land). Everything else is copied unchanged. The new
//! entries start at zero, and so does their optimizer state (what a fresh parameter has):
//! - zero decoder rows mean the decoder ignores the new pi entries until training says
//!   otherwise, so the reconstruction (and the anomaly score) of the migrated model differs
//!   from the old one only through the renormalised softmax;
//! - zero pi columns give the new classes logit 0; their gradient h^T (p - y) is not zero,
//!   so they train from the first step (no symmetry to break: each column has its own target).
//! Old entries keep their values and their RMSprop / Adam state, so the optimizer resumes
//! where it stopped instead of re-warming the square averages of a trained model.

use crate::error::{Error, Result};
use crate::model::{build, ModelSpec};

use super::checkpoint::Weights;

/// Name and shape of every parameter of `spec`'s model, in store order.
pub fn param_shapes(spec: &ModelSpec) -> Result<Vec<(String, Vec<usize>)>> {
    let (g, _) = build(spec, 1, 1)?;
    Ok(g.params.iter().map(|p| (g.tensors[p.tensor].name.clone(), g.tensors[p.tensor].shape.clone())).collect())
}

/// `old` as the spec `new`, which must equal the checkpoint's spec `from` except for more
/// classes. Tensors whose shape grew by the added class count along one axis are extended
/// (old values in the leading block, zeros after); parameters and optimizer state alike.
pub fn extend_classes(old: &Weights, from: &ModelSpec, new: &ModelSpec) -> Result<Weights> {
    let added = new.classes.checked_sub(from.classes).filter(|&a| a > 0).ok_or_else(|| {
        Error::Invalid(format!(
            "extend_classes: the new model has {} classes, the checkpoint's {}; it must have more",
            new.classes, from.classes
        ))
    })?;
    if !from.has_classifier() || from.sums_over_classes() || !from.class_prior.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: only an SS or ES classifier (softmax head, no class prior) can gain classes",
            from.name()
        )));
    }
    if (ModelSpec { classes: new.classes, ..from.clone() }) != *new {
        return Err(Error::Invalid("extend_classes: the new model must equal the checkpoint's except for its classes".into()));
    }
    let shapes = param_shapes(new)?;
    let extend = |tensors: &[(String, Vec<usize>, Vec<f32>)], what: &str| -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        if let Some((n, _, _)) = tensors.iter().find(|(n, _, _)| !shapes.iter().any(|(s, _)| s == n)) {
            return Err(Error::Invalid(format!("checkpoint {what} '{n}' is not a parameter of {}", new.name())));
        }
        let mut out = Vec::with_capacity(shapes.len());
        for (name, shape) in &shapes {
            let Some((_, old_shape, v)) = tensors.iter().find(|(n, _, _)| n == name) else {
                if what == "parameter" {
                    return Err(Error::Invalid(format!("the checkpoint has no parameter '{name}': it was saved from another model")));
                }
                continue; // optimizer state may be absent (e.g. never trained): stays zero
            };
            out.push((
                name.clone(),
                shape.clone(),
                grow(v, old_shape, shape, added).map_err(|m| Error::Invalid(format!("{what} '{name}': {m}")))?,
            ));
        }
        Ok(out)
    };
    Ok(Weights {
        params: extend(&old.params, "parameter")?,
        state1: extend(&old.state1, "optimizer state")?,
        state2: extend(&old.state2, "optimizer state")?,
    })
}

/// `v` of `old` shape placed in the leading block of a zero tensor of `new` shape, which
/// may differ from `old` along one axis, by `added`.
fn grow(v: &[f32], old: &[usize], new: &[usize], added: usize) -> std::result::Result<Vec<f32>, String> {
    if old == new {
        return Ok(v.to_vec());
    }
    let diff: Vec<usize> = (0..new.len()).filter(|&a| old.get(a) != Some(&new[a])).collect();
    if old.len() != new.len() || diff.len() != 1 || new[diff[0]] != old[diff[0]] + added {
        return Err(format!("shape {old:?} cannot become {new:?} by adding {added} classes along one axis"));
    }
    let axis = diff[0];
    // rows: product of the axes before `axis`; each row holds old[axis] (new[axis]) blocks of
    // `inner` values
    let outer: usize = old[..axis].iter().product();
    let inner: usize = old[axis + 1..].iter().product();
    let (ob, nb) = (old[axis] * inner, new[axis] * inner);
    let mut out = vec![0f32; outer * nb];
    for r in 0..outer {
        out[r * nb..r * nb + ob].copy_from_slice(&v[r * ob..(r + 1) * ob]);
    }
    Ok(out)
}
