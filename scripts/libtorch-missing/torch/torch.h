// Found only when libtorch is not installed in .deps/libtorch (see .cargo/config.toml).
#error "libtorch is not installed: run `bash scripts/setup.sh torch` from the repository root, then build again"
