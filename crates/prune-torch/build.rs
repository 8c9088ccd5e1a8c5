//! Points the runtime linker at libtorch (torch-sys sets no rpath) and explains a missing install.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    match std::env::var("LIBTORCH") {
        Ok(dir) if std::path::Path::new(&dir).join("lib").exists() => {
            let lib = std::path::Path::new(&dir).join("lib");
            let lib = lib.canonicalize().unwrap_or(lib);
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
        other => {
            let at = other
                .map(|d| format!(" (LIBTORCH={d})"))
                .unwrap_or_default();
            panic!("libtorch not found{at}: run `bash scripts/setup.sh torch` from the repository root");
        }
    }
}
