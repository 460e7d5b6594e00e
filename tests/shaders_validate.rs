//! Every WGSL file parses and validates with naga, without any adapter, and every op's entry
//! point exists in the file the GPU backend loads it from (works on any machine, no GPU).

use ssvae::backend::gpu::kernels::{spec, ACTIVATION, SHADERS};
use ssvae::backend::{Act, Conv2d, Gemm, Op};

fn validate(name: &str, src: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default());
    if let Err(e) = v.validate(&module) {
        panic!("{name}: validation failed: {}", e.emit_to_string(src));
    }
    module
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

#[test]
fn every_op_entry_point_exists() {
    let modules: Vec<(&str, naga::Module)> = SHADERS.iter().map(|(n, s)| (*n, validate(n, s))).collect();
    let ops = [
        Op::Gemm(Gemm::new(2, 3, 4).bias(Act::Relu)),
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
        Op::ColSum { rows: 2, cols: 3, accumulate: true },
        Op::SoftmaxRows { rows: 2, cols: 3 },
        Op::SoftmaxBackward { rows: 2, cols: 3 },
        Op::MeanVar { rows: 2, cols: 3 },
        Op::RandomBits { n: 3, stream: 0 },
        Op::RandomNormal { n: 3, stream: 0 },
        Op::Reparam { n: 3, stream: 0 },
        Op::ReparamBackward { n: 3 },
        Op::BceLogits { rows: 2, cols: 3, scale: 1.0 },
        Op::GaussianNll { rows: 2, cols: 3, scale: 1.0 },
        Op::Kl { rows: 2, cols: 3, scale: 1.0 },
        Op::SoftmaxCe { rows: 2, classes: 3, scale: 1.0 },
        Op::RepeatRows { rows: 2, cols: 3, copies: 4 },
        Op::RepeatRowsBackward { rows: 2, cols: 3, copies: 4 },
        Op::RowScale { rows: 2, cols: 3, alpha: 0.5 },
        Op::WeightedRowSum { rows: 2, classes: 3, scale: 1.0 },
        Op::CategoricalKl { rows: 2, classes: 3, scale: 1.0 },
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
        Op::LstmForward { batch: 2, steps: 3, hidden: 5 },
        Op::LstmBackward { batch: 2, steps: 3, hidden: 5 },
    ];
    for op in &ops {
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
