//! IDX files (raw or gzipped): any bytes give images or an error, never a panic or a huge
//! allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ssvae::data::read_idx_bytes(std::path::Path::new("fuzz.idx"), data.to_vec());
});
