package sshpool

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadPart reads dispatcher output: login banners before the startup marker are skipped,
// lines longer than the reader's buffer are kept whole, the one newline the end marker's printf
// adds is dropped, a marker of another command or nonce is output, and a stream that ends early
// is an unknown outcome.
func TestReadPart(t *testing.T) {
	long := strings.Repeat("x", 100)
	stream := "Welcome to the login node\nno newline banner" + "\n@@n-ready\n" +
		long + "\n@@n-end 2 0\n@@m-end 1 0\nlast" + "\n@@n-end 1 7\n"
	r := bufio.NewReaderSize(strings.NewReader(stream), 16)
	data, code, err := readPart(r, false, "@@n-ready", "@@n-end 1", true, 1<<20)
	require.NoError(t, err)
	require.Equal(t, 7, code)
	require.Equal(t, long+"\n@@n-end 2 0\n@@m-end 1 0\nlast", string(data))

	_, _, err = readPart(bufio.NewReader(strings.NewReader("@@n-ready\npartial")), false, "@@n-ready", "@@n-end 1", true, 1<<20)
	require.ErrorIs(t, err, ErrOutcomeUnknown)

	_, _, err = readPart(bufio.NewReader(strings.NewReader(strings.Repeat("y\n", 100)+"\n@@n-end 1 0\n")), true, "", "@@n-end 1", true, 50)
	require.True(t, errors.Is(err, ErrOutcomeUnknown) && strings.Contains(err.Error(), "exceeded"), "%v", err)

	data, _, err = readPart(bufio.NewReader(strings.NewReader("\n@@n-end 1\n")), true, "", "@@n-end 1", false, 50)
	require.NoError(t, err)
	require.Empty(t, data)
}

func TestDispatchable(t *testing.T) {
	require.True(t, dispatchable(nil))
	require.True(t, dispatchable([]byte("a\n")))
	require.False(t, dispatchable([]byte{}), "empty but not nil stdin goes on a session: it is an EOF, not /dev/null")
	require.False(t, dispatchable([]byte("a")))
	require.False(t, dispatchable([]byte("a\x00\n")))
}
