package agent

import (
	"bytes"
	"strings"
)

type bytesBuffer = bytes.Buffer

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
