//! Writes the bundle targets' seeds into the folder given (default
//! `fuzz/seeds`): `bundle_bytes/sample.bundle` (the sample bundle) and
//! `bundle_manifest/{text,edit}` (its manifest as text to mutate, and an
//! empty edit). Run by `scripts/fuzz-seeds.sh`.

use std::fs;
use std::path::PathBuf;

use seam_fuzz::bundle::{sample_writer, sections};

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    let bundle = sample_writer().to_bytes().expect("sample bundle writes");
    fs::create_dir_all(out.join("bundle_bytes"))?;
    fs::create_dir_all(out.join("bundle_manifest"))?;
    fs::write(out.join("bundle_bytes/sample.bundle"), &bundle)?;
    let mut text = vec![0u8];
    text.extend_from_slice(&sections(&bundle)[0].1);
    fs::write(out.join("bundle_manifest/text"), text)?;
    fs::write(out.join("bundle_manifest/edit"), [1u8])
}
