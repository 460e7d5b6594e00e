//! model.safetensors / optimizer.safetensors: any bytes give weights or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ssvae::train::checkpoint::weights_from_bytes(std::path::Path::new("fuzz.safetensors"), data);
});
