package wasm

import (
	"encoding/json"
	"errors"
	"hash/crc32"

	"github.com/pybox-dev/pybox/internal/api"
)

func asInputError(err error, target **api.InputError) bool { return errors.As(err, target) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
