package credcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSSHKeygen checks keys made by the real ssh-keygen, the tool members use, including the
// conversion the PKCS#8-encrypted refusal recommends.
func TestSSHKeygen(t *testing.T) {
	t.Parallel()
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed; install openssh-client to run this test")
	}
	dir := t.TempDir()
	run := func(t *testing.T, args ...string) error {
		t.Helper()
		out, err := exec.Command(keygen, args...).CombinedOutput()
		if err != nil {
			t.Logf("ssh-keygen %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return err
	}
	gen := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		require.NoError(t, run(t, append([]string{"-q", "-C", "test", "-f", path}, args...)...))
		return path
	}
	fingerprint := func(t *testing.T, path string) string {
		t.Helper()
		out, err := exec.Command(keygen, "-l", "-E", "sha256", "-f", path+".pub").Output()
		require.NoError(t, err)
		return strings.Fields(string(out))[1]
	}
	read := func(t *testing.T, path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return b
	}

	valid := []struct {
		name, typ, format string
		bits              int
		pass              string
		args              []string
	}{
		{"ed25519", "ed25519", "openssh", 256, "", []string{"-t", "ed25519", "-N", ""}},
		{"ed25519 encrypted", "ed25519", "openssh", 256, pass, []string{"-t", "ed25519", "-N", pass}},
		{"rsa 3072", "rsa", "openssh", 3072, "", []string{"-t", "rsa", "-b", "3072", "-N", ""}},
		{"rsa pem", "rsa", "pem-pkcs1", 2048, "", []string{"-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""}},
		{"ecdsa 384 pkcs8", "ecdsa", "pkcs8", 384, "", []string{"-t", "ecdsa", "-b", "384", "-m", "PKCS8", "-N", ""}},
		{"ecdsa 521 pem", "ecdsa", "pem-sec1", 521, "", []string{"-t", "ecdsa", "-b", "521", "-m", "PEM", "-N", ""}},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			path := gen(t, strings.ReplaceAll(tc.name, " ", "_"), tc.args...)
			info, err := ValidateKey(read(t, path), []byte(tc.pass))
			require.NoError(t, err)
			require.Equal(t, tc.typ, info.Type)
			require.Equal(t, tc.format, info.Format)
			require.Equal(t, tc.bits, info.Bits)
			require.Equal(t, tc.pass != "", info.Encrypted)
			require.Equal(t, fingerprint(t, path), info.Fingerprint)
		})
	}

	t.Run("pkcs8 encrypted is refused, and the advised conversion works", func(t *testing.T) {
		path := gen(t, "rsa_pkcs8_enc", "-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", pass)
		require.True(t, strings.HasPrefix(string(read(t, path)), "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
		_, err := ValidateKey(read(t, path), []byte(pass))
		require.ErrorIs(t, err, ErrUnsupported)
		require.ErrorContains(t, err, "ssh-keygen -p -f KEY")

		require.NoError(t, run(t, "-p", "-P", pass, "-N", pass, "-f", path))
		info, err := ValidateKey(read(t, path), []byte(pass))
		require.NoError(t, err)
		require.Equal(t, "openssh", info.Format)
		require.True(t, info.Encrypted)
		require.Equal(t, fingerprint(t, path), info.Fingerprint)
	})
	t.Run("rsa 1024", func(t *testing.T) {
		path := gen(t, "rsa1024", "-t", "rsa", "-b", "1024", "-N", "")
		_, err := ValidateKey(read(t, path), nil)
		require.ErrorIs(t, err, ErrWeakKey)
		require.ErrorContains(t, err, "the RSA key is 1024 bits")
	})
	// -m RFC4716 writes a private key in OpenSSH format (ssh-dss inside), -m PEM a DSA PEM block.
	for _, format := range []string{"RFC4716", "PEM"} {
		t.Run("dsa -m "+format, func(t *testing.T) {
			path := filepath.Join(dir, "dsa_"+format)
			if run(t, "-q", "-t", "dsa", "-m", format, "-N", "", "-f", path) != nil {
				t.Skip("this ssh-keygen cannot make DSA keys (OpenSSH >= 9.8 builds without DSA)")
			}
			_, err := ValidateKey(read(t, path), nil)
			require.ErrorIs(t, err, ErrWeakKey)
			require.ErrorContains(t, err, "DSA keys are insecure and disabled in OpenSSH since 7.0")
		})
	}
}
