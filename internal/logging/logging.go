// Package logging builds Ferry's zerolog logger: JSON lines on stderr with the field names that
// go-plugin's host parses (@message, @level, @timestamp), so a launcher that starts Ferry as a
// plugin shows its logs at the right level. Secrets must never be passed to a logger.
package logging

import (
	"io"
	"os"
	"sync"

	"github.com/rs/zerolog"
)

// TimeFormat is go-plugin's (hclog's) JSON timestamp layout.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

var once sync.Once

func setup() {
	zerolog.MessageFieldName = "@message"
	zerolog.LevelFieldName = "@level"
	zerolog.TimestampFieldName = "@timestamp"
	zerolog.TimeFieldFormat = TimeFormat
	zerolog.ErrorFieldName = "error"
}

// New returns a logger writing to w (os.Stderr when nil) at level ("debug", "info", "warn",
// "error"; anything else means info).
func New(w io.Writer, level string) zerolog.Logger {
	once.Do(setup)
	if w == nil {
		w = os.Stderr
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
