//! The checked-in header, `include/seam.h`, is what cbindgen generates from
//! the current source.

use std::path::Path;

/// cbindgen's header for this crate, with `cbindgen.toml`'s settings.
fn generated() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/seam.h");
    let fresh = generated();
    if std::env::var_os("SEAM_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/seam.h");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "capi/include/seam.h is stale: the C API changed but the header was not regenerated.\n\
         Regenerate it with\n    SEAM_BLESS=1 cargo test -p seam-capi --test header\n\
         and commit it."
    );
}
