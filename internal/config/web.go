package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// validateWeb checks the [web] section; an empty listen turns the front door off and skips it.
func (c Config) validateWeb(bad func(field, format string, a ...any)) {
	w := c.Web
	if w.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(w.Listen)
	if err != nil {
		bad("web.listen", "must be HOST:PORT or :PORT, got %q", w.Listen)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("web.listen", "port must be 0-65535, got %q", port)
	}
	if host != "" && !isIP(host) && host != "localhost" {
		bad("web.listen", "host must be an IP address or localhost, got %q", host)
	}
	if (w.TLSCert == "") != (w.TLSKey == "") {
		bad("web.tls_cert", "set tls_cert and tls_key together")
	}
	if w.PlainHTTP {
		if w.TLSCert != "" {
			bad("web.plain_http", "cannot be set with tls_cert and tls_key")
		}
		if !IsLoopback(host) {
			bad("web.plain_http", "is allowed only on a loopback address (127.0.0.1, ::1, localhost), not %q: a password or token would cross the network in clear", w.Listen)
		}
	}
	if w.PublicURL != "" {
		u, err := url.Parse(w.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("web.public_url", "must be an http(s) URL such as https://ferry.example.org, got %q", w.PublicURL)
		}
	}
	for field, d := range map[string]Duration{"web.session_idle": w.SessionIdle, "web.session_max": w.SessionMax,
		"web.invite_ttl": w.InviteTTL, "web.token_ttl": w.TokenTTL, "web.token_max_ttl": w.TokenMaxTTL} {
		if d.Duration <= 0 {
			bad(field, "must be a positive duration, got %s", d.Duration)
		}
	}
	if w.TokenTTL.Duration > w.TokenMaxTTL.Duration {
		bad("web.token_ttl", "must not be longer than web.token_max_ttl (%s)", w.TokenMaxTTL.Duration)
	}
	if w.SignInPerAccount <= 0 {
		bad("web.signin_per_account", "must be positive, got %d", w.SignInPerAccount)
	}
	if w.SignInPerAddress <= 0 {
		bad("web.signin_per_address", "must be positive, got %d", w.SignInPerAddress)
	}
}

// IsLoopback reports whether host (an IP address, "localhost" or "") is a loopback address. The
// empty host (all interfaces) is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// WebURL is the console's public URL: web.public_url, else derived from web.listen.
func (c Config) WebURL() string {
	if c.Web.PublicURL != "" {
		return strings.TrimRight(c.Web.PublicURL, "/")
	}
	scheme := "https"
	if c.Web.PlainHTTP {
		scheme = "http"
	}
	host, port, _ := net.SplitHostPort(c.Web.Listen)
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
