//! GPU error paths are typed errors with actionable messages, never panics: no matching
//! adapter, a buffer over the device's binding limit, bad shapes at a kernel call.
mod common;

use ssvae::backend::gpu::{GpuBackend, GpuOptions};
use ssvae::backend::Gemm;
use ssvae::{Backend, DType, Error, Kernels};

#[test]
fn unknown_adapter_name_lists_what_exists() {
    let r = GpuBackend::new(&GpuOptions { adapter_name: Some("no-such-adapter-xyz".into()), ..Default::default() });
    match r {
        Err(Error::NoAdapter { detail }) => {
            let msg = Error::NoAdapter { detail: detail.clone() }.to_string();
            assert!(msg.contains("--backend cpu") && msg.contains("mesa-vulkan-drivers"), "{msg}");
            if common::gpu().is_some() {
                assert!(detail.contains("no-such-adapter-xyz") && detail.contains("adapters seen"), "{detail}");
            }
        }
        Err(e) => panic!("expected NoAdapter, got {e}"),
        Ok(g) => panic!("no adapter should match, got {}", g.describe()),
    }
}

#[test]
fn buffer_over_the_binding_limit_is_rejected_before_allocation() {
    let Some(gpu) = common::gpu() else { return };
    let limit = gpu.adapter().max_storage_buffer_binding_size.min(gpu.adapter().max_buffer_size);
    let n = (limit / 4) as usize + 1;
    match gpu.alloc(n, DType::F32) {
        Err(Error::BufferTooLarge { bytes, limit: l, .. }) => {
            assert_eq!(l, limit);
            assert!(bytes > limit);
        }
        Err(e) => panic!("expected BufferTooLarge, got {e}"),
        Ok(_) => panic!("a buffer over the limit was allocated"),
    }
    let msg = gpu.alloc(n, DType::F32).err().unwrap().to_string();
    assert!(msg.contains("smaller batch size"), "{msg}");
}

#[test]
fn bad_shapes_at_a_gpu_kernel_call_are_typed_errors() {
    let Some(gpu) = common::gpu() else { return };
    let a = gpu.alloc(6, DType::F32).unwrap();
    let b = gpu.alloc(5, DType::F32).unwrap();
    let c = gpu.alloc(4, DType::F32).unwrap();
    let e = gpu.gemm(Gemm::new(2, 2, 3), &a, &b, None, &c).unwrap_err();
    assert!(matches!(e, Error::Shape { op: "gemm", .. }), "{e}");
    assert!(e.to_string().contains("'b' has 5 elements, the kernel needs 6"), "{e}");
    let u = gpu.alloc(4, DType::U32).unwrap();
    let e = gpu.add(&a, &u, &c).unwrap_err().to_string();
    assert!(e.contains("must be F32"), "{e}");
}
