//! `ssvae export`: tiny runs of each family (trained by the binary on `ssvae generate` data)
//! exported to ONNX and PyTorch; the ONNX bytes are parsed back with a minimal protobuf reader
//! (no Python here: benches/export/check.py compares the numbers with onnxruntime and torch).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssvae::backend::cpu::CpuBackend;
use ssvae::run::Run;

const BIN: &str = env!("CARGO_BIN_EXE_ssvae");

fn ssvae(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("runs the ssvae binary")
}

fn ok(args: &[&str]) -> Output {
    let o = ssvae(args);
    assert!(o.status.success(), "ssvae {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
    o
}

/// This test's own folder (removed when the test passes), made and empty.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::new("export-test", name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- a minimal protobuf reader -------------------------------------------------------------

#[derive(Debug, Clone)]
enum V<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let x = b[*i];
        *i += 1;
        v |= ((x & 0x7f) as u64) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// The fields of one message, in order.
fn fields(b: &[u8]) -> Vec<(u32, V<'_>)> {
    let (mut i, mut out) = (0, Vec::new());
    while i < b.len() {
        let key = varint(b, &mut i);
        let (field, wire) = ((key >> 3) as u32, key & 7);
        let v = match wire {
            0 => V::Int(varint(b, &mut i)),
            2 => {
                let n = varint(b, &mut i) as usize;
                i += n;
                V::Bytes(&b[i - n..i])
            }
            5 => {
                i += 4;
                V::Fixed
            }
            1 => {
                i += 8;
                V::Fixed
            }
            w => panic!("wire type {w} at byte {i}"),
        };
        out.push((field, v));
    }
    out
}

fn bytes_of<'a>(m: &[(u32, V<'a>)], f: u32) -> Vec<&'a [u8]> {
    m.iter()
        .filter(|(k, _)| *k == f)
        .filter_map(|(_, v)| match v {
            V::Bytes(b) => Some(*b),
            _ => None,
        })
        .collect()
}
fn str_of(m: &[(u32, V<'_>)], f: u32) -> Vec<String> {
    bytes_of(m, f).iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect()
}
fn int_of(m: &[(u32, V<'_>)], f: u32) -> Option<u64> {
    m.iter().find_map(|(k, v)| match v {
        V::Int(x) if *k == f => Some(*x),
        _ => None,
    })
}

/// A parsed ONNX model: what the tests look at.
#[derive(Debug)]
struct Model {
    opset: u64,
    ops: Vec<String>,
    /// name -> dims ("n" for a named dimension)
    inputs: Vec<(String, Vec<String>)>,
    outputs: Vec<(String, Vec<String>)>,
    /// initializer name -> element count (checked against raw_data's length)
    inits: HashMap<String, usize>,
    metadata: HashMap<String, String>,
}

fn value_info(b: &[u8]) -> (String, Vec<String>) {
    let f = fields(b);
    let name = str_of(&f, 1).remove(0);
    let ty = fields(bytes_of(&f, 2)[0]);
    let tt = fields(bytes_of(&ty, 1)[0]);
    assert_eq!(int_of(&tt, 1), Some(1), "{name}: float input/output");
    let shape = fields(bytes_of(&tt, 2)[0]);
    let dims = bytes_of(&shape, 1)
        .iter()
        .map(|d| {
            let d = fields(d);
            int_of(&d, 1).map(|v| v.to_string()).unwrap_or_else(|| str_of(&d, 2).remove(0))
        })
        .collect();
    (name, dims)
}

fn parse(path: &Path) -> Model {
    let bytes = std::fs::read(path).unwrap();
    let m = fields(&bytes);
    assert_eq!(int_of(&m, 1), Some(8), "IR version");
    let opset = int_of(&fields(bytes_of(&m, 8)[0]), 2).unwrap();
    let g = fields(bytes_of(&m, 7)[0]);
    let ops = bytes_of(&g, 1).iter().map(|n| str_of(&fields(n), 4).remove(0)).collect();
    let mut inits = HashMap::new();
    for t in bytes_of(&g, 5) {
        let t = fields(t);
        let dims: Vec<u64> = match bytes_of(&t, 1).first() {
            Some(packed) => {
                let (mut i, mut d) = (0, Vec::new());
                while i < packed.len() {
                    d.push(varint(packed, &mut i));
                }
                d
            }
            None => Vec::new(),
        };
        let n: u64 = dims.iter().product();
        assert_eq!(int_of(&t, 2), Some(1), "float initializers");
        assert_eq!(bytes_of(&t, 9)[0].len() as u64, 4 * n, "raw_data holds the dims' elements");
        let name = str_of(&t, 8).remove(0);
        assert!(inits.insert(name.clone(), n as usize).is_none(), "initializer {name} twice");
    }
    let metadata = bytes_of(&m, 14)
        .iter()
        .map(|e| {
            let e = fields(e);
            (str_of(&e, 1).remove(0), str_of(&e, 2).remove(0))
        })
        .collect();
    Model {
        opset,
        ops,
        inputs: bytes_of(&g, 11).iter().map(|b| value_info(b)).collect(),
        outputs: bytes_of(&g, 12).iter().map(|b| value_info(b)).collect(),
        inits,
        metadata,
    }
}

fn dims(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn names(v: &[(String, Vec<String>)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

/// The run's parameters: name -> element count.
fn run_params(run: &Path) -> HashMap<String, usize> {
    let be = CpuBackend::new();
    let r = Run::open(&be, run).unwrap();
    r.store.read(&be).unwrap().into_iter().map(|(n, _, v)| (n, v.len())).collect()
}

/// Exports `run` to ONNX and torch under `dir`; returns the ONNX folder.
fn export_both(run: &Path, dir: &Path) -> PathBuf {
    let onnx = dir.join("onnx");
    ok(&["export", "--run", s(run), "--to", "onnx", "--out", s(&onnx)]);
    let torch = dir.join("torch");
    ok(&["export", "--run", s(run), "--to", "torch", "--out", s(&torch)]);
    let py = std::fs::read_to_string(torch.join("ssvae_model.py")).unwrap();
    assert!(py.contains("def load(") && py.contains("def decode(") && py.contains("CONFIG = json.loads"));
    let w = std::fs::read(torch.join("weights.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&w).unwrap();
    let params = run_params(run);
    assert_eq!(st.len(), params.len(), "weights.safetensors holds the parameters only");
    assert!(st.names().iter().all(|n| params.contains_key(*n)));
    onnx
}

/// The initializers of the encoder and decoder together are exactly the run's parameters.
fn check_initializers(run: &Path, models: &[&Model]) {
    let params = run_params(run);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in models {
        for (n, c) in &m.inits {
            assert!(seen.insert(n.clone(), *c).is_none(), "{n} in both graphs");
        }
    }
    assert_eq!(seen, params, "initializers = the run's parameters (names and sizes)");
}

fn has_ops(m: &Model, ops: &[&str]) {
    for op in ops {
        assert!(m.ops.iter().any(|o| o == op), "no {op} node in {:?}", m.ops);
    }
}

fn table_data(dir: &Path) -> PathBuf {
    let d = dir.join("tab");
    ok(&["generate", "table", "--out", s(&d), "--unlabeled", "40", "--test-per-class", "4", "--labeled-per-class", "4", "--new", "3"]);
    d
}

fn train(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let run = dir.join(name);
    let mut a = vec!["train", "--epochs", "1", "--batch-size", "16", "--backend", "cpu", "--quiet", "--out", s(&run)];
    a.extend_from_slice(args);
    ok(&a);
    run
}

#[test]
fn dense_ss_exports_encoder_and_decoder() {
    let dir = tmp("dense-ss");
    let d = table_data(&dir);
    let run = train(&dir, "run", &["--data", s(&d.join("train.csv")), "--test-data", s(&d.join("test.csv")), "--hidden", "8,6"]);
    let onnx = export_both(&run, &dir);
    let enc = parse(&onnx.join("encoder.onnx"));
    let dec = parse(&onnx.join("decoder.onnx"));
    assert_eq!(enc.opset, 17);
    assert_eq!(enc.inputs, vec![("x".to_string(), dims(&["n", "18"]))]);
    assert_eq!(names(&enc.outputs), ["probs", "mu", "logvar"]);
    assert_eq!(enc.outputs[0].1, dims(&["n", "4"]));
    assert_eq!(enc.outputs[1].1, dims(&["n", "2"]));
    // the standardizer inside; relu layers; the bounded logvar
    has_ops(&enc, &["Sub", "Mul", "MatMul", "Add", "Relu", "Softmax", "Tanh"]);
    assert_eq!(names(&dec.inputs), ["z", "pi"], "decoder input order: z then pi");
    assert_eq!(dec.inputs[1].1, dims(&["n", "4"]));
    assert_eq!(names(&dec.outputs), ["mean", "var"], "a table's Gaussian decoder");
    assert_eq!(dec.outputs[1].1, dims(&["n", "18"]));
    has_ops(&dec, &["Concat", "Softplus"]);
    check_initializers(&run, &[&enc, &dec]);
    assert!(enc.metadata["ssvae.model"].contains("\"kind\":\"ss\""));
    assert!(enc.metadata.contains_key("ssvae.standardizer"));

    // the checkpoint records the conventions a re-implementation needs
    let ck = std::fs::read(run.join("checkpoint").join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&ck).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], "ssvae");
    for k in [
        "ssvae.weights_layout",
        "ssvae.input_scaling",
        "ssvae.decoder_input",
        "ssvae.batch_norm",
        "ssvae.padding",
        "ssvae.lstm",
        "ssvae.logvar_bound",
        "ssvae.gaussian_var_floor",
    ] {
        assert!(meta.contains_key(k), "model.safetensors metadata lacks {k}");
    }
    assert!(meta["ssvae.batch_norm"].contains("0.001"));
    assert!(meta["ssvae.lstm"].contains("[i | f | g | o]"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dense_es_exports_an_encoder_only_and_eu_has_no_pi() {
    let dir = tmp("dense-es-eu");
    let d = table_data(&dir);
    let data = ["--data", s(&d.join("train.csv")).to_string().leak(), "--test-data", s(&d.join("test.csv")).to_string().leak()];
    let es = train(&dir, "es", &[&["--model", "es-dense", "--hidden", "8"], &data[..]].concat());
    let onnx = export_both(&es, &dir.join("es-out"));
    assert!(onnx.join("encoder.onnx").exists());
    assert!(!onnx.join("decoder.onnx").exists(), "an ES model has no decoder");
    let enc = parse(&onnx.join("encoder.onnx"));
    assert_eq!(names(&enc.outputs), ["probs"]);
    check_initializers(&es, &[&enc]);

    let eu = train(&dir, "eu", &[&["--model", "eu-dense", "--hidden", "8"], &data[..]].concat());
    let onnx = export_both(&eu, &dir.join("eu-out"));
    let enc = parse(&onnx.join("encoder.onnx"));
    let dec = parse(&onnx.join("decoder.onnx"));
    assert_eq!(names(&enc.outputs), ["mu", "logvar"]);
    assert_eq!(names(&dec.inputs), ["z"], "an EU decoder takes z alone");
    check_initializers(&eu, &[&enc, &dec]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cnn_exports_nhwc_images_with_convolutions() {
    let dir = tmp("cnn");
    let d = dir.join("img");
    ok(&["generate", "images", "--out", s(&d), "--unlabeled", "8", "--test-per-class", "2", "--labeled-per-class", "3", "--new", "2"]);
    let run = train(
        &dir,
        "run",
        &["--model", "ss-cnn", "--data", s(&d.join("train")), "--test-data", s(&d.join("test")), "--conv", "4:3:2", "--hidden", "8"],
    );
    let onnx = export_both(&run, &dir);
    let enc = parse(&onnx.join("encoder.onnx"));
    let dec = parse(&onnx.join("decoder.onnx"));
    assert_eq!(enc.inputs, vec![("x".to_string(), dims(&["n", "28", "28", "3"]))], "raw NHWC images");
    has_ops(&enc, &["Div", "Transpose", "Conv", "BatchNormalization", "Relu", "Reshape", "Softmax"]);
    has_ops(&dec, &["ConvTranspose", "BatchNormalization", "Sigmoid"]);
    assert_eq!(dec.outputs, vec![("mean".to_string(), dims(&["n", "28", "28", "3"]))]);
    check_initializers(&run, &[&enc, &dec]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rnn_exports_lstm_and_window_pooling() {
    let dir = tmp("rnn");
    let d = dir.join("log");
    ok(&[
        "generate",
        "sensor-log",
        "--out",
        s(&d),
        "--window",
        "16",
        "--unlabeled",
        "8",
        "--test-per-class",
        "2",
        "--labeled-per-class",
        "3",
        "--new",
        "2",
    ]);
    let run = train(
        &dir,
        "run",
        &[
            "--model",
            "ss-rnn",
            "--data",
            s(&d.join("train.csv")),
            "--test-data",
            s(&d.join("test.csv")),
            "--window",
            "16",
            "--sequence-column",
            "recording",
            "--label-column",
            "label",
            "--hidden",
            "4,5,3",
        ],
    );
    let onnx = export_both(&run, &dir);
    let enc = parse(&onnx.join("encoder.onnx"));
    let dec = parse(&onnx.join("decoder.onnx"));
    assert_eq!(enc.inputs, vec![("x".to_string(), dims(&["n", "16", "3"]))]);
    has_ops(&enc, &["LSTM", "Split", "Log", "ReduceMean", "Softmax"]);
    assert_eq!(enc.outputs[0].1, dims(&["n", "4"]), "window probabilities");
    assert_eq!(enc.outputs[1].1, dims(&["n", "16", "2"]), "per-step mu");
    assert_eq!(dec.inputs[1].1, dims(&["n", "16", "4"]), "per-step pi");
    has_ops(&dec, &["LSTM"]);
    check_initializers(&run, &[&enc, &dec]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tmp("bad");
    let o = ssvae(&["export", "--run", s(&dir.join("nope")), "--to", "onnx", "--out", s(&dir.join("out"))]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such run folder") && err.contains("nope"), "{err}");
    assert!(!dir.join("out").exists(), "nothing written for a missing run");

    let o = ssvae(&["export", "--run", s(&dir), "--to", "keras", "--out", s(&dir.join("out"))]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("keras") && err.contains("onnx") && err.contains("torch"), "{err}");
    let e = "keras".parse::<ssvae::export::Format>().unwrap_err().to_string();
    assert!(e.contains("keras") && e.contains("onnx or torch"), "{e}");

    // a folder that is not a run
    let o = ssvae(&["export", "--run", s(&dir), "--to", "onnx", "--out", s(&dir.join("out"))]);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoints_without_metadata_still_load() {
    use safetensors::tensor::{Dtype, TensorView};
    use ssvae::train::checkpoint::{weights_from_bytes, Weights};
    let v = [1.0f32, 2.0];
    let view = TensorView::new(Dtype::F32, vec![2], bytemuck::cast_slice(&v)).unwrap();
    let bytes = safetensors::serialize(vec![("enc0.bias".to_string(), view)], None).unwrap();
    let w: Weights = weights_from_bytes(Path::new("old.safetensors"), &bytes).unwrap();
    assert_eq!(w.params, vec![("enc0.bias".to_string(), vec![2], v.to_vec())]);
}
