package pybox

// The gvisor backend (runsc); it reports an error at first use when runsc
// is missing or this is not Linux.
import _ "github.com/pybox-dev/pybox/internal/gvisor"
