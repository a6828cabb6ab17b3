#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| barman_cloud::fuzzing::backup_info(data));
