package pybox

// The backends compiled into every build. Each registers itself with
// internal/backend; the native one reports ErrUnsupported off Linux.
import _ "github.com/pybox-dev/pybox/internal/native"
