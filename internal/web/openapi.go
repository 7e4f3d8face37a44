package web

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the API's OpenAPI 3 document. TestOpenAPIMatchesRoutes checks that every path and
// method in it is a route and every route is in it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document.
func OpenAPI() []byte { return openAPIDoc }

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
