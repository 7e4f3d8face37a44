package identity_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/ferryhpc/ferry"

// TestLayout checks the package boundaries the architecture relies on, from `go list`: managed
// identities know nothing of gRPC (or the web), and no public package depends on the agent's
// internal configuration.
func TestLayout(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH: cannot list package dependencies")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{.Name}} {{join .Deps " "}}`, module+"/...").Output()
	require.NoError(t, err)
	deps := map[string][]string{}
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]], names[f[0]] = f[2:], f[1]
	}
	require.Contains(t, deps, module+"/internal/identity")
	for _, d := range deps[module+"/internal/identity"] {
		require.False(t, strings.HasPrefix(d, "google.golang.org/grpc") || strings.HasPrefix(d, module+"/plugin/proto") ||
			d == module+"/plugin" || d == "net/http", "internal/identity depends on %s", d)
	}
	for _, d := range deps[module+"/internal/agent"] {
		require.False(t, strings.HasPrefix(d, "google.golang.org/grpc"), "internal/agent depends on %s", d)
	}
	for pkg, ds := range deps {
		public := !strings.Contains(pkg, "/internal/") && names[pkg] != "main"
		if !public {
			continue
		}
		for _, d := range ds {
			require.NotEqual(t, module+"/internal/config", d, "public package %s depends on internal/config", pkg)
		}
	}
}
