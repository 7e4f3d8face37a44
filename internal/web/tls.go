package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryhpc/ferry/internal/config"
)

// TLSConfig returns how the front door speaks TLS: with [web]'s tls_cert and tls_key; else, unless
// plain_http, with a self-signed certificate generated once into state_dir (web-cert.pem and
// web-key.pem, 0600) and kept across restarts, its SHA-256 fingerprint logged so people can check
// it in their browser. nil means plain HTTP.
func TLSConfig(cfg config.Config, log zerolog.Logger) (*tls.Config, error) {
	w := cfg.Web
	if w.PlainHTTP {
		return nil, nil
	}
	certFile, keyFile := w.TLSCert, w.TLSKey
	if certFile == "" {
		certFile = filepath.Join(cfg.Agent.StateDir, "web-cert.pem")
		keyFile = filepath.Join(cfg.Agent.StateDir, "web-key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := selfSign(cfg, certFile, keyFile); err != nil {
				return nil, fmt.Errorf("web: self-signed certificate: %w", err)
			}
			log.Info().Str("cert", certFile).Msg("web: generated a self-signed certificate")
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("web: load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	fp := sha256.Sum256(pair.Certificate[0])
	log.Info().Str("cert", certFile).Str("sha256", colonHex(fp[:])).Msg("web: serving TLS")
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// selfSign writes an ECDSA P-256 certificate valid for ten years for localhost, the loopback
// addresses, the listen address and the public URL's host.
func selfSign(cfg config.Config, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Ferry agent", Organization: []string{"Ferry (self-signed)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	hosts := []string{}
	if h, _, err := net.SplitHostPort(cfg.Web.Listen); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if u, err := url.Parse(cfg.WebURL()); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}
