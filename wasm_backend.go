package pybox

// The wasm backend (CPython on WASI in wazero). This file is not named
// backend_wasm.go: a _wasm suffix would restrict it to GOARCH=wasm.
import _ "github.com/pybox-dev/pybox/internal/wasm"
