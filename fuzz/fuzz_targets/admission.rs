#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| secure_model_fuzz::targets::admission(data));
