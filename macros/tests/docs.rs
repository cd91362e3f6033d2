//! The complete example is shown twice, in this crate's README (the section
//! pasted into the top-level README) and in the HAL's crate docs; both are
//! doctests, and this keeps them the same.

fn rust_block(text: &str) -> &str {
    let start = text.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let len = text[start..].find("```").expect("a closed block");
    &text[start..start + len]
}

#[test]
fn readme_and_hal_docs_show_the_same_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let hal = std::fs::read_to_string(root.join("../hal/src/driver_example.md")).unwrap();
    assert_eq!(
        rust_block(&readme),
        rust_block(&hal),
        "update hal/src/driver_example.md"
    );
}
