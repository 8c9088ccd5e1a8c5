// Found only when libtorch is not installed in .deps/libtorch (see .cargo/config.toml), as the
// first header torch-sys compiles. The #error says what to do; the missing include after it
// stops the compiler before a flood of follow-on errors.
#error "libtorch is not installed: run `bash scripts/setup.sh torch` from the repository root, then build again"
#include "libtorch-is-not-installed--run-bash-scripts-setup.sh-torch"
