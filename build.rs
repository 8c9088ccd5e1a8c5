//! Lets the umbrella crate's examples, tests and binaries find the native libraries of the
//! enabled backends at run time (libtorch and the TensorFlow C library set no rpath).

fn rpath_to(var: &str, sub: &str, feature: &str) {
    println!("cargo:rerun-if-env-changed={var}");
    if std::env::var_os(format!("CARGO_FEATURE_{feature}")).is_none() {
        return;
    }
    if let Ok(dir) = std::env::var(var) {
        let lib = std::path::Path::new(&dir).join(sub);
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}

fn main() {
    rpath_to("LIBTORCH", "lib", "TORCH");
    rpath_to("PKG_CONFIG_PATH", "..", "TF");
}
