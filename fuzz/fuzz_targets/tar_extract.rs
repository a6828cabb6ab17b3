#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    barman_cloud::fuzzing::tar_extract(data, &target);
    // Nothing may appear beside the target.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
});
