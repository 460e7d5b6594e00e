//! Every WGSL file parses and validates with naga, without any adapter, and every op's entry
//! point exists in the file the GPU backend loads it from and keeps its contract with
//! `Op::slots` and the family's `Params` struct (works on any machine, no GPU).

use ssvae::backend::gpu::kernels::{spec, ACTIVATION, SHADERS};
use ssvae::backend::{Access, Act, Conv2d, DType, Gemm, GemmTiles, KernelSpec, Op, Slot};

fn validate(name: &str, src: &str) -> naga::Module {
    validate_with_info(name, src).0
}

fn validate_with_info(name: &str, src: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default());
    match v.validate(&module) {
        Ok(info) => (module, info),
        Err(e) => panic!("{name}: validation failed: {}", e.emit_to_string(src)),
    }
}

#[test]
fn every_wgsl_file_on_disk_validates_and_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let src = std::fs::read_to_string(&path).unwrap();
            if name == "activation.wgsl" {
                // the prelude: valid on its own, compiled as part of other modules
                validate(&name, &src);
                assert_eq!(ACTIVATION, src, "{name}: embedded copy differs from the file (rebuild)");
                continue;
            }
            let embedded = SHADERS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} is not embedded in kernels::SHADERS"));
            let with_prelude = format!("{ACTIVATION}{src}");
            assert!(
                embedded.1 == src || embedded.1 == with_prelude,
                "{name}: embedded copy differs from the file (with or without the activation prelude; rebuild)"
            );
            validate(&name, embedded.1);
            n += 1;
        }
    }
    assert_eq!(n, SHADERS.len(), "shaders/ and kernels::SHADERS disagree");
}

const CONV: Conv2d =
    Conv2d { batch: 2, in_h: 5, in_w: 5, in_c: 3, out_h: 3, out_w: 3, out_c: 4, kh: 3, kw: 3, stride: 2, pad_h: 1, pad_w: 1 };

/// One small instance of every op (every entry point of every file; the GEMM twice, so both
/// the scalar and the vec4 kernel are checked).
fn every_op() -> Vec<Op> {
    vec![
        Op::Gemm(Gemm::new(2, 3, 4).bias(Act::Relu)),
        Op::Gemm(Gemm::new(4, 8, 4).bias(Act::Relu).scaled(1.0, 1.0)),
        Op::ActForward { n: 3, act: Act::Tanh },
        Op::ActBackward { n: 3, act: Act::Sigmoid },
        Op::Add { n: 3 },
        Op::Mul { n: 3 },
        Op::Scale { n: 3, alpha: 2.0 },
        Op::Axpy { n: 3, alpha: 2.0 },
        Op::Fill { n: 3, value: 1.0 },
        Op::ConcatCols { rows: 2, cols_a: 1, cols_b: 2 },
        Op::SplitCols { rows: 2, cols_a: 1, cols_b: 2 },
        Op::GatherRowsU8 { rows: 2, cols: 3, src_rows: 4 },
        Op::GatherRowsF32 { rows: 2, cols: 3, src_rows: 4 },
        Op::GatherRowsF16 { rows: 2, cols: 3, src_rows: 4 },
        Op::LabelMix { rows: 2, classes: 3 },
        Op::LabelMixBackward { rows: 2, classes: 3 },
        Op::OneHotArgmax { rows: 2, classes: 3 },
        Op::ColSum { rows: 2, cols: 3, accumulate: true },
        Op::SoftmaxRows { rows: 2, cols: 3 },
        Op::SoftmaxBackward { rows: 2, cols: 3 },
        Op::MeanVar { rows: 2, cols: 3 },
        Op::RandomBits { n: 3, stream: 0 },
        Op::RandomNormal { n: 3, stream: 0 },
        Op::Reparam { n: 3, stream: 0 },
        Op::ReparamBackward { n: 3 },
        Op::BceLogits { rows: 2, cols: 3, scale: 1.0 },
        Op::GaussianNll { rows: 2, cols: 3, scale: 1.0, floor: 1e-2 },
        Op::Kl { rows: 2, cols: 3, scale: 1.0 },
        Op::SoftmaxCe { rows: 2, classes: 3, scale: 1.0, smoothing: 0.1 },
        Op::RepeatRows { rows: 2, cols: 3, copies: 4 },
        Op::RepeatRowsBackward { rows: 2, cols: 3, copies: 4 },
        Op::RowScale { rows: 2, cols: 3, alpha: 0.5 },
        Op::WeightedRowSum { rows: 2, classes: 3, scale: 1.0 },
        Op::CategoricalKl { rows: 2, classes: 3, scale: 1.0 },
        Op::ConsistencyKl { rows: 2, classes: 3, scale: 1.0 },
        Op::KlGaussians { rows: 2, cols: 3, scale: 1.0 },
        Op::RmsProp { n: 3 },
        Op::Adam { n: 3 },
        Op::Conv2dForward { conv: CONV, bias: true },
        Op::Conv2dBackwardInput { conv: CONV, bias: true },
        Op::Conv2dBackwardWeight { conv: CONV, accumulate: true },
        Op::Conv2dBackwardWeightSplit { conv: CONV, samples: 1 },
        Op::SumSlices { n: 3, slices: 2, accumulate: true },
        Op::BatchNormPartial { rows: 2, cols: 3, chunks: 1 },
        Op::BatchNormStats { rows: 2, cols: 3, chunks: 1, momentum: 0.1, eps: 1e-5 },
        Op::BatchNormBackwardPartial { rows: 2, cols: 3, chunks: 1, act: Act::Relu },
        Op::BatchNormBackwardReduce { cols: 3, chunks: 1 },
        Op::BatchNormRunning { cols: 3, eps: 1e-5 },
        Op::BatchNormForward { rows: 2, cols: 3, act: Act::Relu },
        Op::BatchNormBackward { rows: 2, cols: 3, act: Act::Relu },
        Op::Dropout { n: 3, rate: 0.5, stream: 1 },
        Op::Gumbel { n: 3, tau: 0.5, stream: 1 },
        Op::ShiftScale { rows: 2, height: 3, width: 3, channels: 1, max_shift: 1, scale: 0.1, stream: 1 },
        Op::LstmForward { batch: 2, steps: 3, hidden: 5 },
        Op::LstmBackward { batch: 2, steps: 3, hidden: 5 },
    ]
}

#[test]
fn every_op_entry_point_exists() {
    let modules: Vec<(&str, naga::Module)> = SHADERS.iter().map(|(n, s)| (*n, validate(n, s))).collect();
    for op in &every_op() {
        let s = spec(op, None);
        let (_, m) = modules.iter().find(|(n, _)| *n == s.file).unwrap_or_else(|| panic!("{}: no file {}", op.name(), s.file));
        let ep = m
            .entry_points
            .iter()
            .find(|e| e.name == s.entry)
            .unwrap_or_else(|| panic!("{}: no entry point {} in {}", op.name(), s.entry, s.file));
        // Every pipeline constant the wrapper sets must exist as an override in the module.
        for (c, _) in &s.constants {
            assert!(m.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(*c)), "{}: override {c} missing in {}", op.name(), s.file);
        }
        // The op's name is the entry point's (gemm, softmax_ce, ...), so kernel, CPU twin and
        // test share it.
        assert_eq!(ep.name, op.name(), "op name and entry point differ");
    }
}

/// conv.wgsl's four entry points share one body, so its bindings are named for their role in
/// the implicit GEMM (role, the slot names it stands for).
const CONV_ROLES: [(&str, &[&str]); 4] =
    [("src_a", &["x", "dy"]), ("src_b", &["w", "dy"]), ("bias", &["bias", "unused"]), ("out", &["y", "dx", "dw", "part"])];

/// Whether a WGSL binding name stands for the slot: the slot's name, or the slot's name
/// qualified by the entry point (when entry points of one file bind that slot differently, or
/// the name is a WGSL keyword), or conv.wgsl's role names.
fn names_slot(file: &str, entry: &str, binding: &str, slot: &str) -> bool {
    binding == slot
        || binding == format!("{entry}_{slot}")
        || (file == "conv.wgsl" && CONV_ROLES.iter().any(|(role, slots)| *role == binding && slots.contains(&slot)))
}

/// Binding 0 must be a uniform of the family's `Params` struct: same name, same field names and
/// offsets, and the same size (naga's layouter) as the bytes the GPU backend uploads.
fn check_params(
    at: &str,
    m: &naga::Module,
    layouter: &naga::proc::Layouter,
    g: &naga::GlobalVariable,
    s: &KernelSpec,
    errors: &mut Vec<String>,
) {
    let name = g.name.clone().unwrap_or_default();
    if g.binding.as_ref().map(|b| b.binding) != Some(0) {
        errors.push(format!("{at}: uniform '{name}' is not at binding 0, the parameter block's"));
        return;
    }
    let ty = &m.types[g.ty];
    let want = &s.params_layout;
    if ty.name.as_deref() != Some(want.name) {
        errors.push(format!("{at}: parameter block is WGSL struct {:?}, the Rust side uploads {}", ty.name, want.name));
    }
    let size = layouter[g.ty].size as usize;
    if size != want.size || s.params.len() != want.size {
        errors.push(format!("{at}: WGSL {} is {size} bytes, Rust {} is {} (uploaded {})", want.name, want.name, want.size, s.params.len()));
    }
    let naga::TypeInner::Struct { members, .. } = &ty.inner else {
        errors.push(format!("{at}: parameter block '{name}' is not a struct"));
        return;
    };
    let wgsl: Vec<(String, usize)> = members.iter().map(|mm| (mm.name.clone().unwrap_or_default(), mm.offset as usize)).collect();
    let rust: Vec<(String, usize)> = want.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    if wgsl != rust {
        errors.push(format!("{at}: fields of {} differ: WGSL {wgsl:?}, Rust {rust:?}", want.name));
    }
}

/// A storage binding must be the slot at its binding index - 1: named as the slot, holding its
/// element type (f32 or vec4<f32> for F32, u32 for U32), read-only for a `Read` or optional
/// slot and read_write otherwise. Returns the slot index it binds.
fn check_storage(
    at: &str,
    s: &KernelSpec,
    m: &naga::Module,
    g: &naga::GlobalVariable,
    slots: &[Slot],
    errors: &mut Vec<String>,
) -> Option<usize> {
    let name = g.name.clone().unwrap_or_default();
    let naga::AddressSpace::Storage { access } = g.space else { return None };
    let i = g.binding.as_ref()?.binding as usize;
    let Some(slot) = i.checked_sub(1).and_then(|k| slots.get(k)) else {
        errors.push(format!("{at}: '{name}' at binding {i}, but the op has {} slots", slots.len()));
        return None;
    };
    if !names_slot(s.file, s.entry, &name, slot.name) {
        errors.push(format!("{at}: binding {i} is '{name}', slot {} is '{}'", i - 1, slot.name));
    }
    let read_only = slot.len == 0 || slot.access == Access::Read;
    if read_only == access.contains(naga::StorageAccess::STORE) {
        let is = if read_only { "read_write" } else { "read-only" };
        errors.push(format!("{at}: '{name}' is {is}, slot '{}' is {:?}", slot.name, slot.access));
    }
    let elem = match &m.types[g.ty].inner {
        naga::TypeInner::Array { base, .. } => match &m.types[*base].inner {
            naga::TypeInner::Scalar(sc) | naga::TypeInner::Vector { scalar: sc, .. } => Some(sc.kind),
            _ => None,
        },
        _ => None,
    };
    let want = match slot.dtype {
        DType::F32 => naga::ScalarKind::Float,
        DType::U32 => naga::ScalarKind::Uint,
    };
    if elem != Some(want) {
        errors.push(format!("{at}: '{name}' holds {elem:?}, slot '{}' is {:?}", slot.name, slot.dtype));
    }
    Some(i - 1)
}

/// The contract between an op and its WGSL entry point, checked for every launch: the storage
/// bindings the entry point uses (directly or through the functions it calls) are exactly its
/// `Op::slots` (binding i + 1 = slot i; see `check_storage`), and binding 0 is the family's
/// `Params` struct (see `check_params`). Every entry point of every file is some op's.
#[test]
fn every_entry_point_matches_its_slots_and_params() {
    let modules: Vec<(&str, naga::Module, naga::valid::ModuleInfo)> = SHADERS
        .iter()
        .map(|(n, s)| {
            let (m, i) = validate_with_info(n, s);
            (*n, m, i)
        })
        .collect();
    let mut launches: Vec<(Op, KernelSpec)> = every_op().into_iter().map(|op| (op.clone(), spec(&op, None))).collect();
    let gemm = Op::Gemm(Gemm::new(4, 8, 4).bias(Act::Relu));
    launches.push((gemm.clone(), spec(&gemm, Some(GemmTiles { vec4: false, ..GemmTiles::SMALL }))));
    launches.push((gemm.clone(), spec(&gemm, Some(GemmTiles { direct: true, ..GemmTiles::SMALL }))));
    let mut errors = Vec::new();
    let mut entries_seen = std::collections::HashSet::new();
    for (op, s) in &launches {
        let (_, m, info) = modules.iter().find(|(n, _, _)| *n == s.file).unwrap();
        let (ep_index, _) = m.entry_points.iter().enumerate().find(|(_, e)| e.name == s.entry).unwrap();
        entries_seen.insert((s.file, s.entry));
        let uses = info.get_entry_point(ep_index);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(m.to_ctx()).expect("layout");
        let slots = op.slots();
        let mut bound = vec![false; slots.len()];
        let at = format!("{} ({}::{})", op.name(), s.file, s.entry);
        for (h, g) in m.global_variables.iter() {
            if uses[h].is_empty() || g.binding.is_none() {
                continue;
            }
            if g.binding.as_ref().is_some_and(|b| b.group != 0) {
                errors.push(format!("{at}: '{:?}' is not in group 0, the only group bound", g.name));
            } else if g.space == naga::AddressSpace::Uniform {
                check_params(&at, m, &layouter, g, s, &mut errors);
            } else if let Some(k) = check_storage(&at, s, m, g, &slots, &mut errors) {
                bound[k] = true;
            }
        }
        for (k, b) in bound.iter().enumerate() {
            if !b {
                errors.push(format!("{at}: slot {k} '{}' (binding {}) is not used by the entry point", slots[k].name, k + 1));
            }
        }
    }
    for (file, m, _) in &modules {
        for e in &m.entry_points {
            if !entries_seen.contains(&(*file, e.name.as_str())) {
                errors.push(format!("{file}::{} is no op's entry point (add the op to every_op)", e.name));
            }
        }
    }
    assert!(errors.is_empty(), "{} contract violations:\n{}", errors.len(), errors.join("\n"));
}
