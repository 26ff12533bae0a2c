package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsEveryRoute: openapi.json is valid JSON naming every
// route of the API with its method, and nothing else; every write route
// documents its body or has none, and every route its error answers.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := 0
	for _, ops := range doc.Paths {
		documented += len(ops)
	}
	if documented != len(apiRouteTable) {
		t.Errorf("openapi.json documents %d operations, the API has %d routes", documented, len(apiRouteTable))
	}
	for _, rt := range apiRouteTable {
		op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s is not in openapi.json", rt.method, rt.path)
			continue
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("%s %s documents no responses", rt.method, rt.path)
		}
		for _, p := range strings.Split(rt.path, "/") {
			if name, ok := strings.CutPrefix(p, "{"); ok {
				params, _ := json.Marshal(op["parameters"])
				if !strings.Contains(string(params), `"name":"`+strings.TrimSuffix(name, "}")+`"`) {
					t.Errorf("%s %s: path parameter %s is not documented", rt.method, rt.path, name)
				}
			}
		}
	}
}
