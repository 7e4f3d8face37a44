package sshpool

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Sentinel errors for conditions a caller acts on. They are wrapped with the identity and user.
var (
	// ErrAuth means the login node refused the user's key.
	ErrAuth = errors.New("authentication refused")
	// ErrHostKey means the login node's host key does not match the pinned one.
	ErrHostKey = errors.New("host key mismatch")
	// ErrUnreachable means no TCP connection or SSH handshake could be completed.
	ErrUnreachable = errors.New("login node unreachable")
	// ErrPassphraseNeeded means the private key is encrypted and no passphrase was given.
	ErrPassphraseNeeded = errors.New("this key needs its passphrase")
	// ErrBadPassphrase means the passphrase does not decrypt the key.
	ErrBadPassphrase = errors.New("incorrect passphrase")
	// ErrBadKey means the private key could not be parsed.
	ErrBadKey = errors.New("invalid private key")
	// ErrOutcomeUnknown means a command was started but its result was lost (connection dropped,
	// context ended): it may or may not have run. Errors without it mean the command never started.
	ErrOutcomeUnknown = errors.New("command outcome unknown")
	// ErrClosed means the pool or manager was closed.
	ErrClosed = errors.New("pool closed")
)

// ParsePrivateKey parses an OpenSSH, PEM (PKCS#1, SEC1) or PKCS#8 private key, decrypting it with
// passphrase when it is encrypted. Parse once and keep the signer: a bcrypt-KDF key costs ~150 ms.
// Errors never include key material.
func ParsePrivateKey(pemBytes, passphrase []byte) (ssh.Signer, error) {
	if len(bytes.TrimSpace(pemBytes)) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrBadKey)
	}
	if len(passphrase) == 0 {
		s, err := ssh.ParsePrivateKey(pemBytes)
		if err == nil {
			return s, nil
		}
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, ErrPassphraseNeeded
		}
		return nil, fmt.Errorf("%w: %s", ErrBadKey, sanitizeKeyErr(err))
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(pemBytes, passphrase)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, ErrBadPassphrase
	}
	if strings.Contains(err.Error(), "not an encrypted key") || strings.Contains(err.Error(), "not password protected") {
		// A passphrase for an unencrypted key is harmless: use the key.
		if s, err2 := ssh.ParsePrivateKey(pemBytes); err2 == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrBadKey, sanitizeKeyErr(err))
}

// WithCertificate returns a signer that authenticates with the OpenSSH user certificate cert
// (the contents of KEY-cert.pub) for signer's key. It fails when the certificate is not a user
// certificate or certifies another key.
func WithCertificate(signer ssh.Signer, cert []byte) (ssh.Signer, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrBadKey, err)
	}
	c, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%w: not an OpenSSH certificate (expected the KEY-cert.pub file)", ErrBadKey)
	}
	if c.CertType != ssh.UserCert {
		return nil, fmt.Errorf("%w: a host certificate cannot log in a user", ErrBadKey)
	}
	cs, err := ssh.NewCertSigner(c, signer)
	if err != nil {
		return nil, fmt.Errorf("%w: the certificate is for another key", ErrBadKey)
	}
	return cs, nil
}

// sanitizeKeyErr keeps x/crypto's short reason and drops anything that could echo input.
func sanitizeKeyErr(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// HostKeys is the set of host keys pinned for one login node.
type HostKeys []ssh.PublicKey

// ParseKnownHosts parses OpenSSH known_hosts lines (markers and hashed hosts are not supported) and
// returns the keys. Host patterns are not checked here: the identity pins these keys for its host.
func ParseKnownHosts(text string) (HostKeys, error) {
	var keys HostKeys
	err := eachKnownHost(text, func(_ []string, key ssh.PublicKey) {
		keys = append(keys, key)
	})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("known_hosts: no host key found")
	}
	return keys, nil
}

// eachKnownHost calls f with the host patterns and key of each known_hosts line in text, in order,
// skipping @revoked lines, comments and blank lines. It stops at the first line that does not
// parse and returns its error; f has then seen the lines before it.
func eachKnownHost(text string, f func(hosts []string, key ssh.PublicKey)) error {
	rest := []byte(text)
	for len(bytes.TrimSpace(rest)) > 0 {
		marker, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("known_hosts: %w", err)
		}
		rest = r
		if marker == "@revoked" {
			continue
		}
		f(hosts, key)
	}
	return nil
}

// Algorithms returns the host key algorithms to offer so that the server picks a key we pinned.
// Without this, x/crypto may negotiate an algorithm whose key is not pinned and report a false
// mismatch.
func (h HostKeys) Algorithms() []string {
	var algs []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algs = append(algs, x)
			}
		}
	}
	for _, k := range h {
		switch k.Type() {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(k.Type())
		}
	}
	return algs
}

// HostKeyError reports a host key that is not the pinned one.
type HostKeyError struct {
	Host string
	Got  string   // SHA256 fingerprint presented by the server
	Want []string // pinned fingerprints
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("host key mismatch for %s: server presented %s, pinned %s; if the login node's key really changed, an owner must accept the new key",
		e.Host, e.Got, strings.Join(e.Want, ", "))
}

func (e *HostKeyError) Unwrap() error { return ErrHostKey }

// Callback returns an ssh.HostKeyCallback that accepts only the pinned keys.
func (h HostKeys) Callback() ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		got := key.Marshal()
		for _, k := range h {
			if bytes.Equal(k.Marshal(), got) {
				return nil
			}
		}
		want := make([]string, len(h))
		for i, k := range h {
			want[i] = ssh.FingerprintSHA256(k)
		}
		return &HostKeyError{Host: hostname, Got: ssh.FingerprintSHA256(key), Want: want}
	}
}

// HostPort joins host and port for dialing (IPv6 literals bracketed).
func HostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// KeysForHost returns the keys of the known_hosts lines in text whose host patterns name host:port
// exactly (as OpenSSH writes them: "host" for port 22, "[host]:port" otherwise; comma-separated
// lists allowed; wildcards and hashed names are not matched).
func KeysForHost(text, host string, port int) (HostKeys, error) {
	want := knownhosts.Normalize(HostPort(host, port))
	var keys HostKeys
	err := eachKnownHost(text, func(hosts []string, key ssh.PublicKey) {
		for _, h := range hosts {
			if knownhosts.Normalize(h) == want {
				keys = append(keys, key)
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("known_hosts: no line for %s", want)
	}
	return keys, nil
}
