//! config.json (either layout version): any bytes give a run configuration or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ssvae::run::RunConfig::from_json(std::path::Path::new("config.json"), data);
});
