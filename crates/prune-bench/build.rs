//! Lets the bench binary find libtorch at run time (torch-sys sets no rpath).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
        if let Ok(dir) = std::env::var("LIBTORCH") {
            let lib = std::path::Path::new(&dir).join("lib");
            let lib = lib.canonicalize().unwrap_or(lib);
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
    }
}
