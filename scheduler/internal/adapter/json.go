package adapter

import (
	"bytes"
	"encoding/json"
)

// JSONScalar returns the text of a JSON string (unescaped), or the spelling of a number, true,
// false or null as it stands in v. It reports false for an object, an array, empty input and a
// string that does not decode.
func JSONScalar(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] == '{' || v[0] == '[' {
		return "", false
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	}
	return string(v), true
}
