package pybox

// The backends compiled into every build. Each registers itself with
// internal/backend and reports an error at first use where it cannot run
// (native and gvisor off Linux; gvisor without runsc; wasm without
// python.wasm).
import (
	_ "github.com/pybox-dev/pybox/internal/gvisor"
	_ "github.com/pybox-dev/pybox/internal/native"
	_ "github.com/pybox-dev/pybox/internal/wasm"
)
