package sshpool

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestParsePrivateKey(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	plain, err := ssh.MarshalPrivateKey(edPriv, "")
	require.NoError(t, err)
	enc, err := ssh.MarshalPrivateKeyWithPassphrase(edPriv, "", []byte("s3cret"))
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pemRSA := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	cases := []struct {
		name string
		key  []byte
		pass string
		want error
	}{
		{"openssh ed25519", pem.EncodeToMemory(plain), "", nil},
		{"openssh encrypted with passphrase", pem.EncodeToMemory(enc), "s3cret", nil},
		{"openssh encrypted without passphrase", pem.EncodeToMemory(enc), "", ErrPassphraseNeeded},
		{"openssh encrypted wrong passphrase", pem.EncodeToMemory(enc), "nope", ErrBadPassphrase},
		{"passphrase for an unencrypted key is harmless", pem.EncodeToMemory(plain), "extra", nil},
		{"pem rsa", pemRSA, "", nil},
		{"pkcs8 ec", pkcs8, "", nil},
		{"empty", nil, "", ErrBadKey},
		{"garbage", []byte("not a key"), "", ErrBadKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParsePrivateKey(tc.key, []byte(tc.pass))
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestKnownHostsAndAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edSSH, err := ssh.NewPublicKey(edPub)
	require.NoError(t, err)
	text := "# comment\n[127.0.0.1]:2222 " + string(ssh.MarshalAuthorizedKey(rsaPub)) + "login.example.org " + string(ssh.MarshalAuthorizedKey(edSSH))
	hk, err := ParseKnownHosts(text)
	require.NoError(t, err)
	require.Len(t, hk, 2)
	// RSA pinned: offer the SHA-2 signature algorithms first, so x/crypto never negotiates an
	// algorithm whose key we did not pin.
	require.Equal(t, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA, ssh.KeyAlgoED25519}, hk.Algorithms())

	cb := HostKeys{edSSH}.Callback()
	require.NoError(t, cb("h:22", &net.TCPAddr{}, edSSH))
	err = cb("h:22", &net.TCPAddr{}, rsaPub)
	require.ErrorIs(t, err, ErrHostKey)
	var hke *HostKeyError
	require.ErrorAs(t, err, &hke)
	require.Equal(t, ssh.FingerprintSHA256(rsaPub), hke.Got)

	_, err = ParseKnownHosts("")
	require.Error(t, err)
	_, err = ParseKnownHosts("host ssh-ed25519 notbase64!!\n")
	require.Error(t, err)
}
