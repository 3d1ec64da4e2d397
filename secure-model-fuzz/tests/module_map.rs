//! The crate docs' module map names every module of the crate.

#[test]
fn the_module_map_lists_every_module() {
    secure_model_testkit::assert_module_map_lists_every_module(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"),
    );
}
