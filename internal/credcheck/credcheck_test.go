package credcheck

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

const pass = "s3cret-passphrase"

// keys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	ed       ed25519.PrivateKey
	rsa2048  *rsa.PrivateKey
	rsa1024  *rsa.PrivateKey
	ec256    *ecdsa.PrivateKey
	ec384    *ecdsa.PrivateKey
	ec521    *ecdsa.PrivateKey
	ec224    *ecdsa.PrivateKey
	edOther  ed25519.PrivateKey
	x25519   *ecdh.PrivateKey
	caSigner ssh.Signer
}

func genKeys(t *testing.T) *testKeys {
	t.Helper()
	var k testKeys
	var err error
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k.rsa2048, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	for _, c := range []struct {
		dst   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.ec256, elliptic.P256()}, {&k.ec384, elliptic.P384()}, {&k.ec521, elliptic.P521()}, {&k.ec224, elliptic.P224()}} {
		*c.dst, err = ecdsa.GenerateKey(c.curve, rand.Reader)
		require.NoError(t, err)
	}
	k.x25519, err = ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	k.caSigner, err = ssh.NewSignerFromKey(k.edOther)
	require.NoError(t, err)
	return &k
}

func opensshPEM(t *testing.T, key crypto.PrivateKey, passphrase string) string {
	t.Helper()
	var b *pem.Block
	var err error
	if passphrase == "" {
		b, err = ssh.MarshalPrivateKey(key, "test@example")
	} else {
		b, err = ssh.MarshalPrivateKeyWithPassphrase(key, "test@example", []byte(passphrase))
	}
	require.NoError(t, err)
	return string(pem.EncodeToMemory(b))
}

func pemText(typ string, headers map[string]string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der}))
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pemText("PRIVATE KEY", nil, der)
}

func sec1PEM(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pemText("EC PRIVATE KEY", nil, der)
}

// legacyEncrypted is a PEM block with Proc-Type/DEK-Info encryption, as `openssl rsa -aes256`
// and old ssh-keygen wrote.
func legacyEncrypted(t *testing.T, typ string, der []byte, passphrase string) string {
	t.Helper()
	//lint:ignore SA1019 legacy PEM encryption is what we must be able to read.
	b, err := x509.EncryptPEMBlock(rand.Reader, typ, der, []byte(passphrase), x509.PEMCipherAES256) //nolint:staticcheck
	require.NoError(t, err)
	return string(pem.EncodeToMemory(b))
}

// opensshBlob builds an "openssh-key-v1" PEM from parts, to make keys x/crypto cannot generate
// (DSA, FIDO, several keys) or that are damaged on purpose.
func opensshBlob(cipher, kdf string, nkeys uint32, pub, rest []byte) string {
	body := append([]byte(openSSHMagic), ssh.Marshal(openSSHHeader{
		CipherName: cipher, KdfName: kdf, NumKeys: nkeys, PubKey: pub, Rest: rest,
	})...)
	return pemText("OPENSSH PRIVATE KEY", nil, body)
}

// withPub replaces the embedded public key of an OpenSSH key.
func withPub(t *testing.T, key string, pub []byte) string {
	t.Helper()
	b, _ := pem.Decode([]byte(key))
	require.NotNil(t, b)
	h, err := parseOpenSSHHeader(b.Bytes)
	require.NoError(t, err)
	return opensshBlob(h.CipherName, h.KdfName, h.NumKeys, pub, h.Rest)
}

// lines helpers: 1-based line edits of a key text.
func splitLines(s string) []string { return strings.Split(s, "\n") }

func insertLine(s string, at int, line string) string {
	l := splitLines(s)
	l = append(l[:at-1], append([]string{line}, l[at-1:]...)...)
	return strings.Join(l, "\n")
}

func editLine(s string, at int, f func(string) string) string {
	l := splitLines(s)
	l[at-1] = f(l[at-1])
	return strings.Join(l, "\n")
}

func dropLine(s string, at int) string {
	l := splitLines(s)
	return strings.Join(append(l[:at-1], l[at:]...), "\n")
}

// TestInvalid is the table of refused inputs: usernames, keys and passphrases, each with the
// message a user would see and, where the problem is on one line, that line.
func TestInvalid(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	ed := opensshPEM(t, k.ed, "")
	edEnc := opensshPEM(t, k.ed, pass)
	rsaPKCS1 := pemText("RSA PRIVATE KEY", nil, x509.MarshalPKCS1PrivateKey(k.rsa2048))
	rsaLegacyEnc := legacyEncrypted(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa2048), pass)
	edLines := len(splitLines(strings.TrimSuffix(ed, "\n"))) // BEGIN, body..., END
	edPub, err := ssh.NewPublicKey(k.ed.Public())
	require.NoError(t, err)
	pubLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(edPub)))
	cert := &ssh.Certificate{Key: edPub, CertType: ssh.UserCert, KeyId: "alice", ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	require.NoError(t, cert.SignCert(rand.Reader, k.caSigner))
	certLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	pkixDER, err := x509.MarshalPKIXPublicKey(k.ed.Public())
	require.NoError(t, err)
	dsaPub := ssh.Marshal(struct {
		Type       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", big.NewInt(23), big.NewInt(11), big.NewInt(4), big.NewInt(8)})
	skPub := ssh.Marshal(struct {
		Type, Key, App string
	}{"sk-ssh-ed25519@openssh.com", string(k.ed.Public().(ed25519.PublicKey)), "ssh:"})
	otherPub, err := ssh.NewPublicKey(k.edOther.Public())
	require.NoError(t, err)
	noHeaderBlank := strings.Replace(rsaLegacyEnc, "\n\n", "\n", 1)

	const (
		user = iota
		key
		pp
	)
	cases := []struct {
		name string
		what int    // user, key or pp
		in   string // username, key text or passphrase
		pass string // passphrase for key cases
		is   error
		msg  string
		line int
	}{
		// Usernames.
		{name: "empty username", what: user, in: "", is: ErrInvalidUsername, msg: "no username given"},
		{name: "username only spaces", what: user, in: "   ", is: ErrInvalidUsername, msg: "only spaces"},
		{name: "username leading space", what: user, in: " alice", is: ErrInvalidUsername, msg: "leading or trailing spaces"},
		{name: "username with a space", what: user, in: "alice smith", is: ErrInvalidUsername, msg: "contains a space"},
		{name: "email for username", what: user, in: "alice@uni.example", is: ErrInvalidUsername, msg: "looks like an email address"},
		{name: "root", what: user, in: "root", is: ErrInvalidUsername, msg: "logging in as root is not allowed"},
		{name: "Root", what: user, in: "Root", is: ErrInvalidUsername, msg: "logging in as root is not allowed"},
		{name: "username too long", what: user, in: strings.Repeat("a", 33), is: ErrInvalidUsername, msg: "it is 33 characters long; the limit is 32"},
		{name: "samba machine account", what: user, in: "ws042$", is: ErrInvalidUsername, msg: "Samba machine account"},
		{name: "dot", what: user, in: ".", is: ErrInvalidUsername, msg: "names a directory"},
		{name: "dot dot", what: user, in: "..", is: ErrInvalidUsername, msg: "names a directory"},
		{name: "leading dot", what: user, in: ".alice", is: ErrInvalidUsername, msg: "starts with '.'"},
		{name: "all digits", what: user, in: "1234", is: ErrInvalidUsername, msg: "all digits"},
		{name: "leading dash", what: user, in: "-alice", is: ErrInvalidUsername, msg: "starts with '-'"},
		{name: "punctuation", what: user, in: "alice!", is: ErrInvalidUsername, msg: `contains '!' at position 6`},
		{name: "non-ASCII", what: user, in: "josé", is: ErrInvalidUsername, msg: "non-ASCII character at position 4"},
		{name: "control character", what: user, in: "al\x1bice", is: ErrInvalidUsername, msg: "control character at position 3"},

		// Passphrases.
		{name: "NUL in passphrase", what: pp, in: "abc\x00def", is: ErrInvalidPassphrase, msg: "NUL byte at position 4"},
		{name: "passphrase trailing newline", what: pp, in: "hunter2\n", is: ErrInvalidPassphrase, msg: "ends with a line break"},
		{name: "passphrase trailing CRLF", what: pp, in: "hunter2\r\n", is: ErrInvalidPassphrase, msg: "ends with a line break"},
		{name: "passphrase two lines", what: pp, in: "hunter2\nhunter3", is: ErrInvalidPassphrase, msg: "line break at position 8"},
		{name: "passphrase escape char", what: pp, in: "hun\x1bter2", is: ErrInvalidPassphrase, msg: "control character (0x1b) at position 4"},
		{name: "passphrase tab", what: pp, in: "hunter\t2", is: ErrInvalidPassphrase, msg: "control character (0x09)"},
		{name: "passphrase too long", what: pp, in: strings.Repeat("p", 1025), is: ErrInvalidPassphrase, msg: "it is 1025 bytes; the limit is 1024"},
		{name: "key with an invalid passphrase", what: key, in: edEnc, pass: pass + "\n", is: ErrInvalidPassphrase, msg: "ends with a line break"},

		// Keys: nothing or the wrong thing.
		{name: "empty key", what: key, in: "", is: ErrMalformed, msg: "no key given"},
		{name: "whitespace key", what: key, in: " \n\t\n", is: ErrMalformed, msg: "no key given"},
		{name: "not a key", what: key, in: "hello, here is my key\n", is: ErrMalformed, msg: "this is not a private key"},
		{name: "public key", what: key, in: pubLine + "\n", is: ErrUnsupported, msg: "this is a public key; paste the private key (the file without .pub)"},
		{name: "truncated public key", what: key, in: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC7", is: ErrUnsupported, msg: "this is a public key"},
		{name: "authorized_keys line with options", what: key, in: `from="10.0.0.0/8" ` + pubLine, is: ErrUnsupported, msg: "this is a public key"},
		{name: "certificate", what: key, in: certLine + "\n", is: ErrUnsupported, msg: "this is a certificate; paste the private key"},
		{name: "PEM public key", what: key, in: pemText("PUBLIC KEY", nil, pkixDER), is: ErrUnsupported, msg: "this is a public key"},
		{name: "SSH2 public key", what: key, in: "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"alice\"\nAAAAC3NzaC1lZDI1NTE5AAAAIBAD\n---- END SSH2 PUBLIC KEY ----\n", is: ErrUnsupported, msg: "this is a public key"},
		{name: "X.509 certificate", what: key, in: pemText("CERTIFICATE", nil, []byte("not really a certificate")), is: ErrUnsupported, msg: "X.509 certificate"},
		{name: "PuTTY v2", what: key, in: "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key\nPublic-Lines: 1\nAAAA\n", is: ErrUnsupported, msg: "this is a PuTTY key; export it in OpenSSH format (PuTTYgen: Conversions > Export OpenSSH key)"},
		{name: "PuTTY v3", what: key, in: "PuTTY-User-Key-File-3: ssh-ed25519\r\nEncryption: none\r\n", is: ErrUnsupported, msg: "this is a PuTTY key"},
		{name: "SSH.com private key", what: key, in: "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56wAAAi4AAAA3aWYtbW9kbn\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n", is: ErrUnsupported, msg: "ssh-keygen -i -f KEY"},
		{name: "PGP key", what: key, in: pemText("PGP PRIVATE KEY BLOCK", nil, []byte("xyz")), is: ErrUnsupported, msg: `unsupported key type "PGP PRIVATE KEY BLOCK"`},

		// Keys: weak or unusable.
		{name: "DSA PEM", what: key, in: pemText("DSA PRIVATE KEY", nil, []byte("hand made, detected by its header")), is: ErrWeakKey, msg: "DSA keys are insecure and disabled in OpenSSH since 7.0"},
		{name: "DSA OpenSSH", what: key, in: opensshBlob("none", "none", 1, dsaPub, []byte("private part")), is: ErrWeakKey, msg: "DSA keys are insecure"},
		{name: "RSA 1024 PEM", what: key, in: pemText("RSA PRIVATE KEY", nil, x509.MarshalPKCS1PrivateKey(k.rsa1024)), is: ErrWeakKey, msg: "the RSA key is 1024 bits; at least 2048 are required"},
		{name: "RSA 1024 OpenSSH encrypted, refused before the passphrase", what: key, in: opensshPEM(t, k.rsa1024, pass), is: ErrWeakKey, msg: "1024 bits"},
		{name: "RSA 1024 PKCS#8", what: key, in: pkcs8PEM(t, k.rsa1024), is: ErrWeakKey, msg: "1024 bits"},
		{name: "FIDO key", what: key, in: opensshBlob("none", "none", 1, skPub, []byte("private part")), is: ErrUnsupported, msg: "FIDO security key"},
		{name: "two keys in one OpenSSH file", what: key, in: opensshBlob("none", "none", 2, ssh.Marshal(struct{ A, B string }{"ssh-ed25519", "x"}), nil), is: ErrUnsupported, msg: "the file holds 2 keys"},
		{name: "unknown OpenSSH cipher", what: key, in: opensshBlob("chacha20-poly1305@openssh.com", "bcrypt", 1, edPub.Marshal(), []byte("x")), pass: pass, is: ErrUnsupported, msg: `encrypted with "chacha20-poly1305@openssh.com"/"bcrypt", which Ferry cannot decrypt; re-encrypt it with: ssh-keygen -p -f KEY`},
		{name: "PKCS#8 encrypted", what: key, in: pemText("ENCRYPTED PRIVATE KEY", nil, []byte("opaque")), is: ErrUnsupported, msg: "PKCS#8-encrypted, which Ferry cannot decrypt; convert it to OpenSSH format with: ssh-keygen -p -f KEY"},
		{name: "PKCS#8 X25519", what: key, in: pkcs8PEM(t, k.x25519), is: ErrUnsupported, msg: "unsupported key algorithm (OID 1.3.101.110)"},
		{name: "PKCS#8 ECDSA P-224", what: key, in: pkcs8PEM(t, k.ec224), is: ErrUnsupported, msg: "this ecdsa key cannot be used for SSH"},

		// Keys: passphrases.
		{name: "encrypted OpenSSH without passphrase", what: key, in: edEnc, is: ErrPassphraseNeeded, msg: "this key needs its passphrase"},
		{name: "encrypted OpenSSH wrong passphrase", what: key, in: edEnc, pass: "wrong", is: ErrBadPassphrase, msg: "incorrect passphrase"},
		{name: "legacy PEM without passphrase", what: key, in: rsaLegacyEnc, is: ErrPassphraseNeeded, msg: "this key needs its passphrase"},
		{name: "legacy PEM wrong passphrase", what: key, in: rsaLegacyEnc, pass: "wrong", is: ErrBadPassphrase, msg: "incorrect passphrase"},
		{name: "legacy PEM without DEK-Info", what: key, in: strings.Replace(rsaLegacyEnc, "DEK-Info", "DEK-Lost", 1), pass: pass, is: ErrMalformed, msg: "DEK-Info line is missing"},
		{name: "legacy PEM headers without blank line", what: key, in: noHeaderBlank, pass: pass, is: ErrMalformed, msg: "expected a header line (Name: value) or a blank line after the headers", line: 4},

		// Keys: damaged pastes.
		{name: "BEGIN line missing", what: key, in: dropLine(ed, 1), is: ErrMalformed, msg: "the BEGIN line is missing"},
		{name: "END line missing (truncated paste)", what: key, in: dropLine(ed, edLines), is: ErrMalformed, msg: "the END line is missing: the paste is cut off; copy the whole file, through the line -----END OPENSSH PRIVATE KEY-----"},
		{name: "only the body", what: key, in: dropLine(dropLine(ed, edLines), 1), is: ErrMalformed, msg: "the BEGIN and END lines are missing"},
		{name: "BEGIN and END differ", what: key, in: strings.Replace(rsaPKCS1, "END RSA", "END EC", 1), is: ErrMalformed, msg: `the END line says "EC PRIVATE KEY" but the BEGIN line (line 1) says "RSA PRIVATE KEY"`, line: len(splitLines(rsaPKCS1)) - 1},
		{name: "shell command before BEGIN", what: key, in: "$ cat ~/.ssh/id_ed25519\n" + ed, is: ErrMalformed, msg: "unexpected text before the BEGIN line (a shell prompt or a `cat` command?)", line: 1},
		{name: "prompt before BEGIN on the same line", what: key, in: "alice@laptop:~$ " + ed, is: ErrMalformed, msg: "text before -----BEGIN on the same line", line: 1},
		{name: "prompt after END on the same line", what: key, in: strings.TrimSuffix(ed, "\n") + "alice@laptop:~$ \n", is: ErrMalformed, msg: "text after the END line's closing dashes", line: edLines},
		{name: "BEGIN line joined to the body", what: key, in: strings.Replace(ed, "KEY-----\n", "KEY-----", 1), is: ErrMalformed, msg: "text after the BEGIN line's closing dashes on the same line; the key text must start on the next line", line: 1},
		{name: "prompt after END", what: key, in: ed + "alice@laptop:~$\n", is: ErrMalformed, msg: "unexpected text after the END line", line: edLines + 1},
		{name: "public key after the private key", what: key, in: ed + pubLine + "\n", is: ErrMalformed, msg: "this is a public key; paste only the private key", line: edLines + 1},
		{name: "public key before the private key", what: key, in: pubLine + "\n" + ed, is: ErrMalformed, msg: "this is a public key; paste only the private key", line: 1},
		{name: "two keys", what: key, in: ed + rsaPKCS1, is: ErrMalformed, msg: "a second key starts here (the first starts on line 1)", line: edLines + 1},
		{name: "blank line inside the body", what: key, in: insertLine(ed, 3, ""), is: ErrMalformed, msg: "blank line inside the key", line: 3},
		{name: "whitespace-only line inside the body", what: key, in: insertLine(ed, 4, "   "), is: ErrMalformed, msg: "blank line inside the key", line: 4},
		{name: "leading spaces on a body line", what: key, in: editLine(ed, 3, func(s string) string { return "  " + s }), is: ErrMalformed, msg: "remove leading/trailing spaces", line: 3},
		{name: "trailing space on a body line", what: key, in: editLine(ed, 2, func(s string) string { return s + " " }), is: ErrMalformed, msg: "remove leading/trailing spaces", line: 2},
		{name: "indented key", what: key, in: "    " + strings.ReplaceAll(strings.TrimSuffix(ed, "\n"), "\n", "\n    "), is: ErrMalformed, msg: "leading or trailing spaces on the BEGIN line; remove leading/trailing spaces", line: 1},
		{name: "trailing space on the END line", what: key, in: strings.TrimSuffix(ed, "\n") + " \n", is: ErrMalformed, msg: "spaces on the END line", line: edLines},
		{name: "damaged BEGIN dashes", what: key, in: strings.Replace(ed, "-----BEGIN", "----BEGIN", 1), is: ErrMalformed, msg: "the BEGIN line is damaged; it must read exactly -----BEGIN OPENSSH PRIVATE KEY----- (five dashes on each side)", line: 1},
		{name: "damaged END dashes", what: key, in: strings.Replace(ed, "-----END OPENSSH PRIVATE KEY-----", "-----END OPENSSH PRIVATE KEY---", 1), is: ErrMalformed, msg: "the END line is damaged", line: edLines},
		{name: "text pasted into the body", what: key, in: editLine(ed, 3, func(s string) string { return s[:10] + "$ ls" + s[14:] }), is: ErrMalformed, msg: "characters that cannot be in a key", line: 3},
		{name: "header line in an OpenSSH body", what: key, in: insertLine(ed, 2, "Comment: alice"), is: ErrMalformed, msg: "a header line (Name: value), which OPENSSH PRIVATE KEY keys do not have", line: 2},
		{name: "empty body", what: key, in: "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n", is: ErrMalformed, msg: "the key body is empty"},
		{name: "body line cut short", what: key, in: editLine(ed, 3, func(s string) string { return s[:len(s)-5] }), is: ErrMalformed, msg: "this line's length differs from the lines before it, so the key body is truncated or corrupted", line: 3},
		{name: "last body lines missing", what: key, in: dropLine(dropLine(ed, edLines-1), edLines-2), is: ErrMalformed, msg: "the key body is truncated or corrupted"},
		{name: "corrupted OpenSSH magic", what: key, in: editLine(ed, 2, func(s string) string { return "A" + s[1:] }), is: ErrMalformed, msg: "the key body is truncated or corrupted"},
		{name: "public half replaced", what: key, in: withPub(t, ed, otherPub.Marshal()), is: ErrMalformed, msg: "public and private halves do not match"},
		{name: "OpenSSH key whose embedded public half is RSA 1024", what: key, in: withPub(t, opensshPEM(t, k.rsa2048, ""), mustPub(t, &k.rsa1024.PublicKey)), is: ErrWeakKey, msg: "1024 bits"},
		{name: "whole key on one line", what: key, in: strings.ReplaceAll(strings.TrimSpace(ed), "\n", " "), is: ErrMalformed, msg: "the whole key is on one line", line: 1},
		{name: "literal \\n escapes", what: key, in: strings.ReplaceAll(strings.TrimSpace(ed), "\n", `\n`), is: ErrMalformed, msg: `the key's line breaks are the two characters \n`},
		{name: "lone carriage return", what: key, in: editLine(ed, 3, func(s string) string { return s + "\r" + "AAAA" }), is: ErrMalformed, msg: "a carriage return inside the line", line: 3},
	}
	require.GreaterOrEqual(t, len(cases), 30)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err error
			switch tc.what {
			case user:
				err = ValidateUsername(tc.in)
			case pp:
				err = ValidatePassphrase([]byte(tc.in))
			case key:
				_, err = ValidateKey([]byte(tc.in), []byte(tc.pass))
			}
			require.Error(t, err)
			require.ErrorIs(t, err, tc.is)
			require.ErrorContains(t, err, tc.msg)

			var ke *KeyError
			if errors.As(err, &ke) {
				require.Equal(t, tc.line, ke.Line, "line of %q", err)
				if tc.line > 0 {
					require.True(t, strings.HasPrefix(err.Error(), "line "), "message names the line: %q", err)
				}
			} else {
				require.Zero(t, tc.line, "a line number needs a *KeyError")
				require.False(t, tc.what == key && !errors.Is(err, ErrInvalidPassphrase), "key problems are *KeyError: %v", err)
			}
			// No secret in the message: no body line of the key, no passphrase, not the username.
			for _, l := range splitLines(tc.in) {
				if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "-----") && !strings.HasPrefix(l, "----") {
					require.NotContains(t, err.Error(), l)
				}
			}
			if tc.pass != "" {
				require.NotContains(t, err.Error(), strings.TrimSpace(tc.pass))
			}
			// Except root, whose refusal names it.
			if tc.what != key && len(tc.in) >= 4 && strings.TrimSpace(tc.in) != "" && !strings.EqualFold(tc.in, "root") {
				require.NotContains(t, err.Error(), tc.in)
			}
		})
	}
}

func mustPub(t *testing.T, k crypto.PublicKey) []byte {
	t.Helper()
	p, err := ssh.NewPublicKey(k)
	require.NoError(t, err)
	return p.Marshal()
}

func fp(t *testing.T, k crypto.PublicKey) string {
	t.Helper()
	p, err := ssh.NewPublicKey(k)
	require.NoError(t, err)
	return ssh.FingerprintSHA256(p)
}

func TestValid(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	ed := opensshPEM(t, k.ed, "")
	edFP := fp(t, k.ed.Public())
	rsaFP := fp(t, &k.rsa2048.PublicKey)
	ec256FP := fp(t, &k.ec256.PublicKey)

	cases := []struct {
		name string
		in   string
		pass string
		want Info
	}{
		{"openssh ed25519", ed, "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh"}},
		{"openssh ed25519 encrypted", opensshPEM(t, k.ed, pass), pass, Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Encrypted: true, Format: "openssh"}},
		{"openssh rsa 2048", opensshPEM(t, k.rsa2048, ""), "", Info{Type: "rsa", Bits: 2048, Fingerprint: rsaFP, Format: "openssh"}},
		{"openssh rsa encrypted", opensshPEM(t, k.rsa2048, pass), pass, Info{Type: "rsa", Bits: 2048, Fingerprint: rsaFP, Encrypted: true, Format: "openssh"}},
		{"openssh ecdsa 256", opensshPEM(t, k.ec256, ""), "", Info{Type: "ecdsa", Bits: 256, Fingerprint: ec256FP, Format: "openssh"}},
		{"openssh ecdsa 384", opensshPEM(t, k.ec384, ""), "", Info{Type: "ecdsa", Bits: 384, Fingerprint: fp(t, &k.ec384.PublicKey), Format: "openssh"}},
		{"openssh ecdsa 521 encrypted", opensshPEM(t, k.ec521, pass), pass, Info{Type: "ecdsa", Bits: 521, Fingerprint: fp(t, &k.ec521.PublicKey), Encrypted: true, Format: "openssh"}},
		{"pem pkcs1", pemText("RSA PRIVATE KEY", nil, x509.MarshalPKCS1PrivateKey(k.rsa2048)), "", Info{Type: "rsa", Bits: 2048, Fingerprint: rsaFP, Format: "pem-pkcs1"}},
		{"pem pkcs1 legacy encrypted", legacyEncrypted(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa2048), pass), pass, Info{Type: "rsa", Bits: 2048, Fingerprint: rsaFP, Encrypted: true, Format: "pem-pkcs1"}},
		{"pem sec1", sec1PEM(t, k.ec256), "", Info{Type: "ecdsa", Bits: 256, Fingerprint: ec256FP, Format: "pem-sec1"}},
		{"pem sec1 legacy encrypted", legacyEncrypted(t, "EC PRIVATE KEY", mustSEC1(t, k.ec384), pass), pass, Info{Type: "ecdsa", Bits: 384, Fingerprint: fp(t, &k.ec384.PublicKey), Encrypted: true, Format: "pem-sec1"}},
		{"pkcs8 rsa", pkcs8PEM(t, k.rsa2048), "", Info{Type: "rsa", Bits: 2048, Fingerprint: rsaFP, Format: "pkcs8"}},
		{"pkcs8 ecdsa", pkcs8PEM(t, k.ec256), "", Info{Type: "ecdsa", Bits: 256, Fingerprint: ec256FP, Format: "pkcs8"}},
		{"pkcs8 ed25519", pkcs8PEM(t, k.ed), "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "pkcs8"}},
		{"windows line endings", strings.ReplaceAll(ed, "\n", "\r\n"), "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh", Notes: []string{NoteCRLF}}},
		{"byte-order mark and CRLF", "\uFEFF" + strings.ReplaceAll(ed, "\n", "\r\n"), "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh", Notes: []string{NoteBOM, NoteCRLF}}},
		{"passphrase for an unencrypted key", ed, "unneeded", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh", Notes: []string{NoteUnneededPass}}},
		{"passphrase for an unencrypted PEM key", sec1PEM(t, k.ec256), "unneeded", Info{Type: "ecdsa", Bits: 256, Fingerprint: ec256FP, Format: "pem-sec1", Notes: []string{NoteUnneededPass}}},
		{"blank lines around the key", "\n\n" + ed + "\n\n", "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh"}},
		{"no final newline", strings.TrimSuffix(ed, "\n"), "", Info{Type: "ed25519", Bits: 256, Fingerprint: edFP, Format: "openssh"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := []byte(tc.in)
			orig := bytes.Clone(in)
			info, err := ValidateKey(in, []byte(tc.pass))
			require.NoError(t, err)
			require.Equal(t, tc.want, info)
			require.Equal(t, orig, in, "the caller's buffer is not modified")
		})
	}
}

func mustSEC1(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	return der
}

// TestPassphraseNeededInfo checks that what can be read without the passphrase is returned.
func TestPassphraseNeededInfo(t *testing.T) {
	t.Parallel()
	k := genKeys(t)
	info, err := ValidateKey([]byte(opensshPEM(t, k.rsa2048, pass)), nil)
	require.ErrorIs(t, err, ErrPassphraseNeeded)
	require.Equal(t, Info{Type: "rsa", Bits: 2048, Fingerprint: fp(t, &k.rsa2048.PublicKey), Encrypted: true, Format: "openssh"}, info)
}

// TestValidUsernames: every name OpenSSH and the schedulers accept and directory services hand
// out, dotted and mixed-case ones (Active Directory, LDAP) included.
func TestValidUsernames(t *testing.T) {
	for _, u := range []string{"alice", "a", "_svc", "a_smith", "bob-2", "x" + strings.Repeat("y", 31), "u1000",
		"john.smith", "a.b.c", "John.Smith", "JSmith", "1alice", "smith.", "ad-user.42"} {
		t.Run(u, func(t *testing.T) {
			require.NoError(t, ValidateUsername(u))
		})
	}
}

func TestValidPassphrases(t *testing.T) {
	for _, p := range []string{"", "hunter2", " leading and trailing spaces are legal ", "ünïcödé", strings.Repeat("p", 1024)} {
		t.Run(p[:min(len(p), 20)], func(t *testing.T) {
			require.NoError(t, ValidatePassphrase([]byte(p)))
		})
	}
}

func TestTrimNewline(t *testing.T) {
	cases := []struct{ in, want string }{
		{"pw", "pw"},
		{"pw\n", "pw"},
		{"pw\r\n", "pw"},
		{"pw\n\n", "pw\n"},
		{"pw \n", "pw "},
		{"\n", ""},
		{"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, string(TrimNewline([]byte(tc.in))))
		})
	}
}
