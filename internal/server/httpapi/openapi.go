package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI is docs/openapi.json, copied here because go:embed cannot reach
// outside the package; a test keeps the two identical.
//
//go:generate cp ../../../docs/openapi.json openapi.json
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
