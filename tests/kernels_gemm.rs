//! GEMM: GPU kernel vs the CPU twin on awkward shapes, every transpose case, every fused
//! epilogue, both tile configurations. Tolerance: 1e-4 absolute + 1e-4 relative (f32 sums of
//! up to a few hundred terms in a different order).
mod common;

use common::*;
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::{GemmTiles, GpuBackend, GpuOptions};
use ssvae::backend::{Act, Gemm};
use ssvae::{Backend, Kernels};

fn run<B: Backend>(be: &B, g: Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, c0: &[f32]) -> Vec<f32> {
    let (ab, bb, cb) = (be.upload_f32(a).unwrap(), be.upload_f32(b).unwrap(), be.upload_f32(c0).unwrap());
    let biasb = bias.map(|x| be.upload_f32(x).unwrap());
    be.gemm(g, &ab, &bb, biasb.as_ref(), &cb).unwrap();
    be.read_f32(&cb).unwrap()
}

fn check(gpu: &GpuBackend, cpu: &CpuBackend, g: Gemm, seed: u64) {
    let mut r = rng(seed);
    let a = uniform(&mut r, g.m * g.k, -1.0, 1.0);
    let b = uniform(&mut r, g.k * g.n, -1.0, 1.0);
    let bias = uniform(&mut r, g.n, -1.0, 1.0);
    let c0 = uniform(&mut r, g.m * g.n, -1.0, 1.0);
    let bias = if g.bias { Some(bias.as_slice()) } else { None };
    let want = run(cpu, g, &a, &b, bias, &c0);
    let got = run(gpu, g, &a, &b, bias, &c0);
    assert_close(&format!("{g:?}"), &got, &want, 1e-4, 1e-4);
}

const SHAPES: [(usize, usize, usize); 9] =
    [(1, 1, 1), (1, 7, 3), (5, 1, 9), (7, 13, 5), (17, 31, 64), (64, 64, 64), (65, 67, 33), (97, 3, 131), (130, 70, 257)];

#[test]
fn gemm_matches_cpu_all_transposes_and_shapes() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            check(gpu, &cpu, Gemm::new(m, n, k).trans(ta, tb), s as u64);
        }
    }
}

#[test]
fn gemm_fused_epilogues_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for act in Act::ALL {
        for &(m, n, k) in &[(1, 1, 1), (33, 19, 23), (70, 130, 40)] {
            check(gpu, &cpu, Gemm::new(m, n, k).bias(act), 7);
            check(gpu, &cpu, Gemm::new(m, n, k).act(act).trans(true, false), 8);
            // alpha/beta with an epilogue: act(alpha AB + bias + beta C)
            check(gpu, &cpu, Gemm::new(m, n, k).bias(act).scaled(0.5, 1.0).trans(false, true), 9);
        }
    }
}

#[test]
fn gemm_accumulate_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for &(m, n, k) in &[(3, 5, 7), (66, 65, 67)] {
        check(gpu, &cpu, Gemm::new(m, n, k).scaled(1.0, 1.0), 3);
        check(gpu, &cpu, Gemm::new(m, n, k).scaled(-2.0, 0.25).trans(true, true), 4);
    }
}

#[test]
fn gemm_every_tile_configuration_matches_cpu() {
    if gpu().is_none() {
        return;
    }
    let cpu = CpuBackend::new();
    for tiles in [
        GemmTiles::LARGE,
        GemmTiles::SMALL,
        GemmTiles { threads_m: 4, threads_n: 16, tile_k: 8, vec4: false, wide: false, direct: false, rows: 4 },
    ] {
        let gpu = GpuBackend::new(&GpuOptions { gemm_tiles: Some(tiles), ..Default::default() }).unwrap();
        for &(m, n, k) in &[(1, 1, 1), (65, 67, 33), (130, 70, 257)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                check(&gpu, &cpu, Gemm::new(m, n, k).trans(ta, tb).bias(Act::Relu), 11);
            }
        }
    }
}

#[test]
fn gemm_rejects_bad_shapes() {
    let cpu = cpu();
    let a = cpu.alloc(6, ssvae::DType::F32).unwrap();
    let b = cpu.alloc(6, ssvae::DType::F32).unwrap();
    let c = cpu.alloc(3, ssvae::DType::F32).unwrap();
    let e = cpu.gemm(Gemm::new(2, 2, 3), &a, &b, None, &c).unwrap_err().to_string();
    assert!(e.contains("gemm") && e.contains("'c'") && e.contains("needs 4"), "{e}");
    let e = cpu.gemm(Gemm::new(0, 2, 3), &a, &b, None, &c).unwrap_err().to_string();
    assert!(e.contains("dimension m is 0"), "{e}");
    let e = cpu.gemm(Gemm::new(1, 1, 1), &a, &b, None, &a).unwrap_err().to_string();
    assert!(e.contains("aliasing"), "{e}");
    if let Some(gpu) = gpu() {
        let a = gpu.alloc(6, ssvae::DType::F32).unwrap();
        let c = gpu.alloc(3, ssvae::DType::F32).unwrap();
        let e = gpu.gemm(Gemm::new(2, 2, 3), &a, &a.clone(), None, &c).unwrap_err().to_string();
        assert!(e.contains("gemm"), "{e}");
    }
}

/// The CPU path for A^T B with a long K and a small output (weight gradients over batch x
/// steps rows) against a direct f64 sum, with bias, accumulation and an activation; shapes
/// with whole and partial register tiles, k not a multiple of the panels, and outputs that the
/// kernel computes transposed (40 x 6, 30 x 2).
#[test]
fn cpu_long_k_transposed_gemm_matches_direct_sums() {
    let cpu = common::cpu();
    for &(m, n, k) in
        &[(1usize, 1usize, 4096usize), (7, 5, 5000), (40, 6, 16384), (3, 200, 9000), (40, 160, 8200), (9, 17, 4097), (30, 2, 4100)]
    {
        let mut r = common::rng((m * n + k) as u64);
        let mut a = common::uniform(&mut r, k * m, -1.0, 1.0);
        for v in a.iter_mut().step_by(3) {
            *v = 0.0; // relu-like zeros, as in a weight gradient behind a relu
        }
        let (b, bias, c0) =
            (common::uniform(&mut r, k * n, -1.0, 1.0), common::uniform(&mut r, n, -1.0, 1.0), common::uniform(&mut r, m * n, -1.0, 1.0));
        let g = Gemm::new(m, n, k).trans(true, false).bias(Act::Tanh).scaled(0.5, 1.0);
        let got = run(&cpu, g, &a, &b, Some(&bias), &c0);
        let want: Vec<f32> = (0..m * n)
            .map(|i| {
                let (row, col) = (i / n, i % n);
                let s: f64 = (0..k).map(|kk| a[kk * m + row] as f64 * b[kk * n + col] as f64).sum();
                Act::Tanh.apply((0.5 * s + bias[col] as f64 + c0[i] as f64) as f32)
            })
            .collect();
        common::assert_close(&format!("{m}x{n}x{k} TN"), &got, &want, 2e-4, 1e-3);
    }
}

/// The CPU backend's two GEMM engines (matrixmultiply for A^T B with a large output and for
/// long plain products 128 or more wide, the `gemm` crate otherwise): shapes that take each
/// engine, in every transpose case, with alpha, an accumulated C and an epilogue, against a
/// direct f64 sum.
#[test]
fn cpu_gemm_engines_match_direct_sums() {
    let cpu = common::cpu();
    // (m, n, k, trans_a, trans_b): 600 x 500 TN and 4100 x 130 NN take matrixmultiply, the
    // others the gemm crate (128 x 300 x 200 as the dense layers at batch 128)
    let shapes = [
        (600usize, 500usize, 7usize, true, false),
        (4100, 130, 3, false, false), // with a bias: blocks of rows (gemm_fused_blocks)
        (128, 300, 200, false, false),
        (128, 300, 200, false, true),
        (33, 17, 70, true, true),
        (5000, 40, 9, false, true),
        (1, 1, 1, false, false),
        // k <= 8 over 2048+ rows (the RNN's latent and class products)
        (4100, 30, 2, false, true),
        (2100, 7, 8, false, false),
        (3000, 160, 1, false, true),
        (1280, 64, 10, false, false), // M2's one-hot rows over an accumulated C
    ];
    for (case, &(m, n, k, ta, tb)) in shapes.iter().enumerate() {
        let mut r = common::rng(900 + case as u64);
        let (a, b, c0) = (
            common::uniform(&mut r, m * k, -1.0, 1.0),
            common::uniform(&mut r, k * n, -1.0, 1.0),
            common::uniform(&mut r, m * n, -1.0, 1.0),
        );
        let bias = common::uniform(&mut r, n, -1.0, 1.0);
        let at = |i: usize, kk: usize| if ta { a[kk * m + i] } else { a[i * k + kk] } as f64;
        let bt = |kk: usize, j: usize| if tb { b[j * k + kk] } else { b[kk * n + j] } as f64;
        let direct = |alpha: f64, beta: f64, bias: Option<&[f32]>| -> Vec<f32> {
            (0..m * n)
                .map(|i| {
                    let (row, col) = (i / n, i % n);
                    let s: f64 = (0..k).map(|kk| at(row, kk) * bt(kk, col)).sum();
                    let v = alpha * s + beta * c0[i] as f64 + bias.map_or(0.0, |b| b[col] as f64);
                    if bias.is_some() {
                        Act::Relu.apply(v as f32)
                    } else {
                        v as f32
                    }
                })
                .collect()
        };
        let what = format!("{m}x{n}x{k} ta={ta} tb={tb}");
        // alpha with an accumulated C, alpha alone, the epilogue, and the old C together with
        // the epilogue (M2's class rows: act(one-hots W + b + C))
        let g = Gemm::new(m, n, k).trans(ta, tb);
        for (label, g, with_bias) in [
            ("accumulate", g.scaled(0.5, 1.0), false),
            ("scaled", g.scaled(0.5, 0.0), false),
            ("bias relu", g.bias(Act::Relu), true),
            ("accumulate bias relu", g.bias(Act::Relu).scaled(0.5, 1.0), true),
        ] {
            let bias = with_bias.then_some(bias.as_slice());
            let want = direct(g.alpha as f64, g.beta as f64, bias);
            common::assert_close(&format!("{what} {label}"), &run(&cpu, g, &a, &b, bias, &c0), &want, 1e-5, 1e-4);
        }
    }
}

/// The vec4 kernel (gemm_vec4.wgsl): shapes whose contiguous dimensions are multiples of 4, in
/// every transpose case and epilogue, with every tile depth, including shapes smaller than a
/// tile and not a multiple of it; the spec must really pick the vec4 file for each of them.
#[test]
fn gemm_vec4_kernel_matches_cpu() {
    if gpu().is_none() {
        return;
    }
    let cpu = CpuBackend::new();
    let shapes = [(4usize, 4usize, 4usize), (1, 4, 8), (4, 8, 4), (12, 20, 28), (68, 132, 36), (132, 68, 260), (136, 200, 44)];
    for tiles in [
        GemmTiles::LARGE,
        GemmTiles::SMALL,
        GemmTiles { threads_m: 4, threads_n: 16, tile_k: 8, vec4: true, wide: false, direct: false, rows: 4 },
        GemmTiles { threads_m: 16, threads_n: 8, tile_k: 32, vec4: true, wide: false, direct: false, rows: 4 },
        GemmTiles { threads_m: 8, threads_n: 16, tile_k: 16, vec4: true, wide: true, direct: false, rows: 4 },
        GemmTiles { threads_m: 4, threads_n: 4, tile_k: 8, vec4: true, wide: true, direct: false, rows: 4 },
    ] {
        let gpu = GpuBackend::new(&GpuOptions { gemm_tiles: Some(tiles), no_tuning: true, ..Default::default() }).unwrap();
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                // m = 1 cannot be transposed-A vec4 (M must be a multiple of 4)
                let g = Gemm::new(m, n, k).trans(ta, tb);
                for g in [g, g.bias(Act::Sigmoid).scaled(0.5, 0.75)] {
                    let file = ssvae::backend::gpu::kernels::spec(&ssvae::backend::Op::Gemm(g), Some(tiles)).file;
                    assert_eq!(file == "gemm_vec4.wgsl", ssvae::backend::gpu::kernels::vec4_fits(&g), "{g:?}: {file}");
                    check(&gpu, &cpu, g, 20 + s as u64);
                }
            }
        }
    }
}

/// The unstaged kernel (gemm_direct.wgsl, chosen only by a tuning file): the vec4 kernel's
/// shapes and epilogues, both register blocks, several thread shapes, a K that is not a
/// multiple of 4 where that is allowed (A transposed, B not), outputs smaller than a
/// workgroup and not a multiple of it; the spec must pick the file exactly when the vec4
/// preconditions hold, else the scalar kernel.
#[test]
fn gemm_direct_kernel_matches_cpu() {
    if gpu().is_none() {
        return;
    }
    let cpu = CpuBackend::new();
    let shapes = [
        (4usize, 4usize, 4usize),
        (1, 4, 8),
        (4, 8, 4),
        (12, 20, 28),
        (68, 132, 36),
        (132, 68, 260),
        (136, 200, 44),
        (8, 12, 7),
        (20, 36, 13),
    ];
    for tiles in [
        GemmTiles { threads_m: 16, threads_n: 16, tile_k: 16, vec4: true, wide: false, direct: true, rows: 4 },
        GemmTiles { threads_m: 8, threads_n: 16, tile_k: 16, vec4: true, wide: true, direct: true, rows: 4 },
        GemmTiles { threads_m: 4, threads_n: 4, tile_k: 16, vec4: true, wide: true, direct: true, rows: 2 },
        GemmTiles { threads_m: 16, threads_n: 8, tile_k: 16, vec4: true, wide: false, direct: true, rows: 1 },
        GemmTiles { threads_m: 8, threads_n: 8, tile_k: 16, vec4: true, wide: true, direct: true, rows: 1 },
        GemmTiles { threads_m: 4, threads_n: 16, tile_k: 16, vec4: true, wide: false, direct: true, rows: 2 },
    ] {
        let gpu = GpuBackend::new(&GpuOptions { gemm_tiles: Some(tiles), no_tuning: true, ..Default::default() }).unwrap();
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let g = Gemm::new(m, n, k).trans(ta, tb);
                for g in [g, g.bias(Act::Sigmoid).scaled(0.5, 0.75)] {
                    let file = ssvae::backend::gpu::kernels::spec(&ssvae::backend::Op::Gemm(g), Some(tiles)).file;
                    let fits = ssvae::backend::gpu::kernels::vec4_fits(&g);
                    assert_eq!(file, if fits { "gemm_direct.wgsl" } else { "gemm.wgsl" }, "{g:?}");
                    check(&gpu, &cpu, g, 40 + s as u64);
                }
            }
        }
    }
}

/// Shapes where only some dimensions are multiples of 4 fall back to the scalar kernel and
/// stay correct (the vec4 kernel would read across row ends there).
#[test]
fn gemm_vec4_falls_back_on_unaligned_shapes() {
    if gpu().is_none() {
        return;
    }
    let cpu = CpuBackend::new();
    let gpu = GpuBackend::new(&GpuOptions { gemm_tiles: Some(GemmTiles::SMALL), no_tuning: true, ..Default::default() }).unwrap();
    for (m, n, k, ta, tb) in
        [(4, 6, 8, false, false), (6, 8, 8, true, false), (8, 8, 6, false, false), (8, 8, 6, false, true), (5, 8, 8, true, true)]
    {
        let g = Gemm::new(m, n, k).trans(ta, tb).bias(Act::Relu);
        assert!(!ssvae::backend::gpu::kernels::vec4_fits(&g), "{g:?}");
        assert_eq!(ssvae::backend::gpu::kernels::spec(&ssvae::backend::Op::Gemm(g), None).file, "gemm.wgsl");
        check(&gpu, &cpu, g, 31);
    }
}

/// `ssvae bench tune`'s machinery: tuning two shapes writes them to the file, a backend opened
/// with the file uses the tuned tiles for those shapes (and computes correctly with them),
/// other shapes keep the default, and a damaged file is reported by name and ignored.
#[test]
fn gemm_tuning_file_round_trip() {
    use ssvae::backend::gpu::tune;
    let Some(base) = gpu() else { return };
    let dir = common::TempDir::new("tune-test", "round-trip");
    let path = dir.join("gemm-tuning.json");
    let shapes = [Gemm::new(36, 20, 12), Gemm::new(8, 12, 16).trans(true, true)];
    let entries = tune::tune(base, &shapes, 0.001, |_| {}).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.gflops > 0.0 && e.default_gflops > 0.0));
    tune::save(&path, base.adapter(), &entries).unwrap();
    // saving again merges instead of duplicating
    tune::save(&path, base.adapter(), &entries[..1]).unwrap();
    let f = tune::read_file(&path).unwrap();
    assert_eq!(f.adapters.len(), 1);
    assert_eq!(f.adapters[0].entries.len(), 2);

    let gpu = GpuBackend::new(&GpuOptions { tuning_file: Some(path.clone()), ..Default::default() }).unwrap();
    assert_eq!(gpu.tuned_shapes(), 2);
    for (g, e) in shapes.iter().zip(&entries) {
        assert_eq!(gpu.gemm_tiles_for(g), e.tiles);
        check(&gpu, &CpuBackend::new(), g.bias(Act::Tanh), 41);
    }
    let other = Gemm::new(36, 20, 13);
    assert_eq!(gpu.gemm_tiles_for(&other), GemmTiles::choose(36, 20));
    // another adapter's section is not used
    let mut foreign = f.clone();
    foreign.adapters[0].adapter = "some other GPU".into();
    std::fs::write(&path, serde_json::to_string(&foreign).unwrap()).unwrap();
    assert_eq!(GpuBackend::new(&GpuOptions { tuning_file: Some(path.clone()), ..Default::default() }).unwrap().tuned_shapes(), 0);

    std::fs::write(&path, "{ not json").unwrap();
    let e = tune::read_file(&path).unwrap_err().to_string();
    assert!(e.contains("gemm-tuning.json") && e.contains("not a GEMM tuning file"), "{e}");
    let gpu = GpuBackend::new(&GpuOptions { tuning_file: Some(path.clone()), ..Default::default() }).unwrap();
    assert_eq!(gpu.tuned_shapes(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
