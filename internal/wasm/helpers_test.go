package wasm

import (
	"errors"

	"github.com/pybox-dev/pybox/internal/api"
)

func asInputError(err error, target **api.InputError) bool { return errors.As(err, target) }
