//! Points the runtime linker at the TensorFlow C library installed by scripts/setup.sh.

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let pc = std::env::var("PKG_CONFIG_PATH").unwrap_or_default();
    let lib = std::path::Path::new(&pc).join("..");
    if lib.join("libtensorflow.so.2").exists() {
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    } else {
        println!(
            "cargo:warning=the TensorFlow C library was not found under PKG_CONFIG_PATH={pc}: run `bash scripts/setup.sh tf` from the repository root"
        );
    }
}
