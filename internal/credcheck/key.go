package credcheck

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Info describes a valid private key. It holds no key material.
type Info struct {
	// Type is "ed25519", "rsa" or "ecdsa".
	Type string
	// Bits is the RSA modulus size, or the curve size for ECDSA (256, 384, 521); 256 for ed25519.
	Bits int
	// Fingerprint is the public key's "SHA256:..." fingerprint, as ssh-keygen -l prints it.
	Fingerprint string
	// Encrypted tells whether the key is protected by a passphrase.
	Encrypted bool
	// Format is "openssh", "pem-pkcs1", "pem-sec1" or "pkcs8".
	Format string
	// Notes lists things that were corrected or ignored, for the user to see.
	Notes []string
}

// Notes ValidateKey may add to Info.Notes.
const (
	NoteCRLF         = "converted Windows (CRLF) line endings to Unix ones"
	NoteBOM          = "removed a byte-order mark at the start (the file was saved by a Windows editor)"
	NoteUnneededPass = "a passphrase was given but the key is not encrypted; the passphrase is not needed and was ignored"
)

// Messages used in more than one place.
const (
	notePKCS8Advice = "convert it to OpenSSH format with: ssh-keygen -p -f KEY (it asks for the old passphrase and a new one, which may be the same)"
	msgTruncated    = "the key body is truncated or corrupted; copy the whole file again"
	msgUneven       = "this line's length differs from the lines before it, so the key body is truncated or corrupted; copy the whole file again"
	msgPublicKey    = "this is a public key; paste the private key (the file without .pub)"
	msgCertificate  = "this is a certificate; paste the private key (the file without -cert.pub)"
	msgDSA          = "DSA keys are insecure and disabled in OpenSSH since 7.0; make a new key with: ssh-keygen -t ed25519"
	msgPuTTY        = "this is a PuTTY key; export it in OpenSSH format (PuTTYgen: Conversions > Export OpenSSH key)"
	msgHalves       = "the key's public and private halves do not match; the file is corrupted or was edited, copy it again"
	msgNewKeyAdvice = "make a new key with: ssh-keygen -t ed25519"
)

// PEM labels of the formats ValidateKey reads or refuses by name.
const (
	labelOpenSSH      = "OPENSSH PRIVATE KEY"
	labelPKCS1        = "RSA PRIVATE KEY"
	labelSEC1         = "EC PRIVATE KEY"
	labelPKCS8        = "PRIVATE KEY"
	labelPKCS8Encrypt = "ENCRYPTED PRIVATE KEY"
)

var (
	// markerRE is an intact PEM BEGIN or END line.
	markerRE = regexp.MustCompile(`^-----(BEGIN|END) ([A-Z0-9]+(?: [A-Z0-9]+)*)-----$`)
	// markerPrefixRE is an intact marker followed by more text on the same line.
	markerPrefixRE = regexp.MustCompile(`^-----(BEGIN|END) ([A-Z0-9]+(?: [A-Z0-9]+)*)-----`)
	// sshPublicAlgos are the first field of a public key or authorized_keys line.
	sshPublicAlgos = map[string]bool{
		"ssh-ed25519": true, "ssh-rsa": true, "ssh-dss": true,
		"ecdsa-sha2-nistp256": true, "ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
		"sk-ssh-ed25519@openssh.com": true, "sk-ecdsa-sha2-nistp256@openssh.com": true,
	}
	oidDSA     = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEC      = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// marker is a BEGIN or END line found in the input.
type marker struct {
	line  int // 1-based
	begin bool
	label string // "" when the line is damaged
}

// ValidateKey checks a pasted private key the way a careful admin would and describes it. It
// accepts OpenSSH keys (ed25519, RSA, ECDSA; encrypted or not), PEM RSA (PKCS#1, also with legacy
// Proc-Type encryption), PEM EC (SEC1) and unencrypted PKCS#8. Windows line endings and a
// byte-order mark are normalised and a passphrase given for an unencrypted key is ignored; each is
// noted in Info.Notes. The passphrase is checked with ValidatePassphrase first.
//
// Every other problem is a *KeyError with a specific message and, when it is about one line, its
// line number. On ErrPassphraseNeeded the returned Info already holds what can be read without the
// passphrase (type, format, Encrypted, and for OpenSSH keys bits and fingerprint); on other errors
// it is partial and only for display. ValidateKey does not modify or retain pemBytes or passphrase
// and wipes its own copies (best effort: x/crypto makes copies it does not wipe).
func ValidateKey(pemBytes, passphrase []byte) (Info, error) {
	var info Info
	if err := ValidatePassphrase(passphrase); err != nil {
		return info, err
	}
	text := bytes.Clone(pemBytes)
	wipe := [][]byte{text}
	defer func() {
		for _, b := range wipe {
			clear(b)
		}
	}()

	if len(bytes.TrimSpace(text)) == 0 {
		return info, keyErr(ErrMalformed, 0, "no key given")
	}
	if t, ok := bytes.CutPrefix(text, []byte("\uFEFF")); ok {
		text = t
		info.Notes = append(info.Notes, NoteBOM)
	}
	if bytes.Contains(text, []byte("\r\n")) {
		text = bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n"))
		wipe = append(wipe, text)
		info.Notes = append(info.Notes, NoteCRLF)
	}
	lines := bytes.Split(text, []byte("\n"))
	for i, l := range lines {
		if bytes.IndexByte(l, '\r') >= 0 {
			return info, keyErr(ErrMalformed, i+1, "a carriage return inside the line (old Mac line endings?); save the key with Unix line endings")
		}
	}
	trimmed := bytes.TrimSpace(text)
	if !bytes.Contains(trimmed, []byte("\n")) && bytes.Contains(trimmed, []byte(`\n`)) {
		return info, keyErr(ErrMalformed, 0, `the key's line breaks are the two characters \n (copied from JSON or a quoted string?); paste the key file itself`)
	}

	// Things that are not PEM at all, recognised by their first line.
	first := 0
	for first < len(lines) && len(bytes.TrimSpace(lines[first])) == 0 {
		first++
	}
	// Byte comparisons, not strings, here and below: a string copy of a key line cannot be wiped.
	fl := bytes.TrimSpace(lines[first])
	switch {
	case bytes.HasPrefix(fl, []byte("PuTTY-User-Key-File-")):
		return info, keyErr(ErrUnsupported, 0, msgPuTTY)
	case bytes.Contains(fl, []byte("BEGIN SSH2 PUBLIC KEY")):
		return info, keyErr(ErrUnsupported, 0, msgPublicKey)
	case bytes.Contains(fl, []byte("BEGIN SSH2 ENCRYPTED PRIVATE KEY")):
		return info, keyErr(ErrUnsupported, 0, "this is an SSH.com (SSH2) key; convert it to OpenSSH format with: ssh-keygen -i -f KEY > KEY.openssh")
	}

	markers := findMarkers(lines)
	var begins, ends []marker
	for _, m := range markers {
		if m.begin {
			begins = append(begins, m)
		} else {
			ends = append(ends, m)
		}
	}
	if len(begins) == 0 {
		for i, l := range lines {
			switch publicKeyKind(l) {
			case kindCert:
				return info, keyErr(ErrUnsupported, lineIfNotFirst(i, first), msgCertificate)
			case kindPublic:
				return info, keyErr(ErrUnsupported, lineIfNotFirst(i, first), msgPublicKey)
			}
		}
		if len(ends) > 0 {
			return info, keyErr(ErrMalformed, 0, "the BEGIN line is missing: the start of the key was not copied; copy the whole file, from the -----BEGIN line")
		}
		if looksLikeBase64(lines) {
			return info, keyErr(ErrMalformed, 0, "the BEGIN and END lines are missing; paste the whole key file, from -----BEGIN to -----END")
		}
		return info, keyErr(ErrMalformed, 0, "this is not a private key: a private key starts with a line like -----BEGIN OPENSSH PRIVATE KEY-----")
	}

	// The BEGIN line itself.
	b := begins[0]
	if err := checkMarkerLine(lines[b.line-1], b, labelOpenSSH); err != nil {
		return info, err
	}
	label := b.label
	switch label {
	case labelOpenSSH:
		info.Format = "openssh"
	case labelPKCS1:
		info.Format, info.Type = "pem-pkcs1", "rsa"
	case labelSEC1:
		info.Format, info.Type = "pem-sec1", "ecdsa"
	case labelPKCS8:
		info.Format = "pkcs8"
	case "DSA PRIVATE KEY":
		return info, keyErr(ErrWeakKey, 0, msgDSA)
	case labelPKCS8Encrypt:
		return info, keyErr(ErrUnsupported, 0, "this key is PKCS#8-encrypted, which Ferry cannot decrypt; %s", notePKCS8Advice)
	case "PUBLIC KEY", "RSA PUBLIC KEY", "OPENSSH PUBLIC KEY", "SSH2 PUBLIC KEY":
		return info, keyErr(ErrUnsupported, 0, msgPublicKey)
	case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
		return info, keyErr(ErrUnsupported, 0, "this is an X.509 certificate, not an SSH private key; paste the private key")
	default:
		if len(label) > 40 {
			label = label[:40]
		}
		return info, keyErr(ErrUnsupported, 0, "unsupported key type %q; Ferry accepts OpenSSH, PEM RSA or EC, and PKCS#8 private keys", label)
	}

	// Text before the BEGIN line, and a second key.
	for i := 0; i < b.line-1; i++ {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			continue
		}
		if publicKeyKind(lines[i]) != "" {
			return info, keyErr(ErrMalformed, i+1, "this is a public key; paste only the private key")
		}
		return info, keyErr(ErrMalformed, i+1, "unexpected text before the BEGIN line (a shell prompt or a `cat` command?); paste only the key, from -----BEGIN to -----END")
	}
	if len(begins) > 1 {
		return info, keyErr(ErrMalformed, begins[1].line, "a second key starts here (the first starts on line %d); paste only one private key", b.line)
	}

	// The END line, and what follows it.
	var e marker
	for _, m := range ends {
		if m.line > b.line {
			e = m
			break
		}
	}
	if e.line == 0 {
		return info, keyErr(ErrMalformed, 0, "the END line is missing: the paste is cut off; copy the whole file, through the line -----END %s-----", b.label)
	}
	if err := checkMarkerLine(lines[e.line-1], e, b.label); err != nil {
		return info, err
	}
	if e.label != b.label {
		return info, keyErr(ErrMalformed, e.line, "the END line says %q but the BEGIN line (line %d) says %q; they must match", e.label, b.line, b.label)
	}
	for i := e.line; i < len(lines); i++ {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			continue
		}
		switch publicKeyKind(lines[i]) {
		case kindPublic:
			return info, keyErr(ErrMalformed, i+1, "this is a public key; paste only the private key")
		case kindCert:
			return info, keyErr(ErrMalformed, i+1, "this is a certificate; paste only the private key")
		}
		return info, keyErr(ErrMalformed, i+1, "unexpected text after the END line (a shell prompt?); paste only the key, from -----BEGIN to -----END")
	}

	// The body: optional RFC 1421 headers (legacy PEM encryption), then base64 lines.
	headers, body, err := splitBody(lines, b.line, e.line, label)
	if err != nil {
		return info, err
	}
	der, badLine, err := decodeBody(lines, body)
	wipe = append(wipe, der)
	if err != nil {
		return info, err
	}
	// corrupt reports a body that decoded but does not parse, at the first uneven line if any.
	corrupt := func() error {
		if badLine > 0 {
			return keyErr(ErrMalformed, badLine, msgUneven)
		}
		return keyErr(ErrMalformed, 0, msgTruncated)
	}

	block := &pem.Block{Type: label, Headers: headers, Bytes: der}
	var embeddedPub []byte
	switch label {
	case labelOpenSSH:
		h, err := parseOpenSSHHeader(der)
		if err != nil {
			return info, corrupt()
		}
		if err := h.describe(&info); err != nil {
			return info, err
		}
		embeddedPub = h.PubKey
	case labelPKCS1, labelSEC1:
		info.Encrypted = strings.Contains(headers["Proc-Type"], "ENCRYPTED")
		if info.Encrypted && headers["DEK-Info"] == "" {
			return info, keyErr(ErrMalformed, 0, "the key says it is encrypted (Proc-Type) but its DEK-Info line is missing; copy the whole file again")
		}
	case labelPKCS8:
		if err := describePKCS8(der, &info); err != nil {
			if errors.Is(err, errCorrupt) {
				return info, corrupt()
			}
			return info, err
		}
	}

	encoded := pem.EncodeToMemory(block)
	wipe = append(wipe, encoded)
	var raw any
	switch {
	case info.Encrypted && len(passphrase) == 0:
		return info, keyErr(ErrPassphraseNeeded, 0, "this key needs its passphrase")
	case info.Encrypted:
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(encoded, passphrase)
	default:
		if len(passphrase) > 0 {
			info.Notes = append(info.Notes, NoteUnneededPass)
		}
		raw, err = ssh.ParseRawPrivateKey(encoded)
	}
	if err != nil {
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.Is(err, x509.IncorrectPasswordError):
			return info, keyErr(ErrBadPassphrase, 0, "incorrect passphrase")
		case errors.As(err, &missing):
			return info, keyErr(ErrPassphraseNeeded, 0, "this key needs its passphrase")
		case info.Encrypted && label != labelOpenSSH:
			if strings.Contains(err.Error(), "cannot decode encrypted private keys") {
				return info, keyErr(ErrUnsupported, 0, "the key's legacy PEM encryption (its DEK-Info line) is damaged or unsupported; %s", notePKCS8Advice)
			}
			// Legacy PEM encryption has no integrity check: a wrong passphrase decrypts to noise
			// that fails to parse, as does a corrupted body. The passphrase is the likelier cause.
			return info, keyErr(ErrBadPassphrase, 0, "incorrect passphrase (or the key is corrupted)")
		}
		return info, corrupt()
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		defer clear(*k)
	case ed25519.PrivateKey:
		defer clear(k)
	}
	if err := describeKey(raw, &info); err != nil {
		return info, err
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return info, keyErr(ErrUnsupported, 0, "this %s key cannot be used for SSH; %s", info.Type, msgNewKeyAdvice)
	}
	pub := signer.PublicKey()
	if embeddedPub != nil && !bytes.Equal(embeddedPub, pub.Marshal()) {
		return info, keyErr(ErrMalformed, 0, msgHalves)
	}
	info.Fingerprint = ssh.FingerprintSHA256(pub)
	return info, nil
}

// lineIfNotFirst returns the 1-based line i+1 unless i is the first non-blank line: a message
// about the whole paste needs no line number.
func lineIfNotFirst(i, first int) int {
	if i == first {
		return 0
	}
	return i + 1
}

// findMarkers returns the lines that are meant as BEGIN or END markers, intact or damaged. A line
// counts when it holds "-----BEGIN " or "-----END ", or starts with '-' and holds "BEGIN " or
// "END " (a marker that lost some dashes).
func findMarkers(lines [][]byte) []marker {
	var out []marker
	for i, l := range lines {
		t := bytes.TrimSpace(l)
		var begin bool
		switch {
		case bytes.Contains(t, []byte("-----BEGIN ")):
			begin = true
		case bytes.Contains(t, []byte("-----END ")):
		case bytes.HasPrefix(t, []byte("-")) && bytes.Contains(t, []byte("BEGIN ")):
			begin = true
		case bytes.HasPrefix(t, []byte("-")) && bytes.Contains(t, []byte("END ")):
		default:
			continue
		}
		m := marker{line: i + 1, begin: begin}
		if j := bytes.Index(t, []byte("-----"+markerWord(begin)+" ")); j >= 0 {
			if sm := markerPrefixRE.FindSubmatch(t[j:]); sm != nil {
				m.label = string(sm[2])
			}
		}
		out = append(out, m)
	}
	return out
}

// markerWord returns "BEGIN" or "END".
func markerWord(begin bool) string {
	if begin {
		return "BEGIN"
	}
	return "END"
}

// guessLabel returns the words after BEGIN or END on a damaged marker line, for the message.
func guessLabel(t []byte, word string) string {
	_, after, ok := bytes.Cut(t, []byte(word+" "))
	if !ok {
		return ""
	}
	end := bytes.IndexFunc(after, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ') })
	if end >= 0 {
		after = after[:end]
	}
	after = bytes.TrimSpace(after)
	if len(after) == 0 || len(after) > 40 {
		return ""
	}
	return string(after)
}

// checkMarkerLine reports a marker line that is not exactly "-----BEGIN LABEL-----". fallback is
// the label to show when the line is too damaged to read one.
func checkMarkerLine(l []byte, m marker, fallback string) error {
	if markerRE.Match(l) {
		return nil
	}
	word := markerWord(m.begin)
	if m.begin && bytes.Contains(l, []byte("-----BEGIN ")) && bytes.Contains(l, []byte("-----END ")) {
		return keyErr(ErrMalformed, m.line, "the whole key is on one line, so its line breaks were lost (pasted into a one-line field?); paste the key with its line breaks")
	}
	t := bytes.TrimSpace(l)
	if markerRE.Match(t) {
		return keyErr(ErrMalformed, m.line, "leading or trailing spaces on the %s line; remove leading/trailing spaces", word)
	}
	if i := bytes.Index(t, []byte("-----"+word+" ")); i > 0 && markerPrefixRE.Match(t[i:]) {
		return keyErr(ErrMalformed, m.line, "text before -----%s on the same line (a shell prompt?); remove it", word)
	}
	if markerPrefixRE.Match(t) {
		if m.begin {
			return keyErr(ErrMalformed, m.line, "text after the BEGIN line's closing dashes on the same line; the key text must start on the next line")
		}
		return keyErr(ErrMalformed, m.line, "text after the END line's closing dashes on the same line (a shell prompt printed after a file without a final newline?); remove it")
	}
	label := guessLabel(t, word)
	if label == "" {
		label = fallback
	}
	return keyErr(ErrMalformed, m.line, "the %s line is damaged; it must read exactly -----%s %s----- (five dashes on each side)", word, word, label)
}

// Kinds of public material pasted instead of a private key.
const (
	kindPublic = "public"
	kindCert   = "certificate"
)

// publicKeyKind tells whether line is an OpenSSH public key or certificate line (as in a .pub
// file or authorized_keys), even a truncated one.
func publicKeyKind(line []byte) string {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return ""
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
		if _, ok := pub.(*ssh.Certificate); ok {
			return kindCert
		}
		return kindPublic
	}
	fields := bytes.Fields(line)
	for _, f := range fields[:min(2, len(fields))] {
		if bytes.HasSuffix(f, []byte("-cert-v01@openssh.com")) {
			return kindCert
		}
		if sshPublicAlgos[string(f)] { // no copy: the compiler looks up []byte keys in place
			return kindPublic
		}
	}
	return ""
}

// isBase64Line tells whether every byte of l is in the standard base64 alphabet.
func isBase64Line(l []byte) bool {
	for _, c := range l {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// looksLikeBase64 tells whether the non-blank lines are all base64: a key body without its markers.
func looksLikeBase64(lines [][]byte) bool {
	n := 0
	for _, l := range lines {
		t := bytes.TrimSpace(l)
		if len(t) == 0 {
			continue
		}
		if !isBase64Line(t) {
			return false
		}
		n += len(t)
	}
	return n >= 64
}

// splitBody returns the PEM headers and the 0-based indexes of the base64 lines between the BEGIN
// line (1-based b) and the END line (1-based e). Headers are allowed only for PKCS#1 and SEC1,
// which is where legacy encryption puts Proc-Type and DEK-Info, and must end with a blank line.
func splitBody(lines [][]byte, b, e int, label string) (map[string]string, []int, error) {
	var headers map[string]string
	i := b // 0-based index of the line after BEGIN
	if (label == labelPKCS1 || label == labelSEC1) && i < e-1 && bytes.Contains(lines[i], []byte(":")) {
		headers = map[string]string{}
		for ; i < e-1 && len(bytes.TrimSpace(lines[i])) > 0; i++ {
			k, v, ok := bytes.Cut(lines[i], []byte(":"))
			if !ok {
				return nil, nil, keyErr(ErrMalformed, i+1, "expected a header line (Name: value) or a blank line after the headers")
			}
			headers[string(bytes.TrimSpace(k))] = string(bytes.TrimSpace(v))
		}
		if i == e-1 {
			return nil, nil, keyErr(ErrMalformed, 0, "the key body is missing after the Proc-Type and DEK-Info lines; copy the whole file again")
		}
		i++ // the blank line that ends the headers
	}
	var body []int
	for ; i < e-1; i++ {
		l := lines[i]
		t := bytes.TrimSpace(l)
		switch {
		case len(t) == 0:
			return nil, nil, keyErr(ErrMalformed, i+1, "blank line inside the key; remove blank lines between the BEGIN and END lines")
		case len(t) != len(l):
			return nil, nil, keyErr(ErrMalformed, i+1, "leading or trailing spaces; remove leading/trailing spaces")
		case bytes.Contains(t, []byte(": ")) && len(body) == 0 && label != labelPKCS1 && label != labelSEC1:
			return nil, nil, keyErr(ErrMalformed, i+1, "a header line (Name: value), which %s keys do not have; was something else pasted into the key?", label)
		case !isBase64Line(t):
			return nil, nil, keyErr(ErrMalformed, i+1, "characters that cannot be in a key (only A-Z, a-z, 0-9, +, / and =); was something else pasted into the key?")
		}
		body = append(body, i)
	}
	if len(body) == 0 {
		return nil, nil, keyErr(ErrMalformed, 0, "the key body is empty: nothing between the BEGIN and END lines")
	}
	return headers, body, nil
}

// decodeBody decodes the base64 body lines. badLine is the 1-based number of the first line whose
// length breaks the file's line width (every line but the last has the same length), or 0; it
// points at the damage when the body fails to decode or, later, to parse.
func decodeBody(lines [][]byte, body []int) (der []byte, badLine int, err error) {
	width := len(lines[body[0]])
	for n, i := range body {
		l := len(lines[i])
		last := n == len(body)-1
		if (!last && l != width) || (last && l > width) {
			badLine = i + 1
			break
		}
	}
	var joined []byte
	for _, i := range body {
		joined = append(joined, lines[i]...)
	}
	defer clear(joined)
	der = make([]byte, base64.StdEncoding.DecodedLen(len(joined)))
	n, derr := base64.StdEncoding.Decode(der, joined)
	if derr != nil {
		clear(der)
		if badLine > 0 {
			return nil, badLine, keyErr(ErrMalformed, badLine, msgUneven)
		}
		return nil, 0, keyErr(ErrMalformed, 0, msgTruncated)
	}
	return der[:n], badLine, nil
}

// openSSHHeader is the unencrypted part of an "openssh-key-v1" key (PROTOCOL.key).
type openSSHHeader struct {
	CipherName string
	KdfName    string
	KdfOpts    string
	NumKeys    uint32
	PubKey     []byte
	Rest       []byte `ssh:"rest"`
}

const openSSHMagic = "openssh-key-v1\x00"

func parseOpenSSHHeader(der []byte) (*openSSHHeader, error) {
	rest, ok := bytes.CutPrefix(der, []byte(openSSHMagic))
	if !ok {
		return nil, errCorrupt
	}
	var h openSSHHeader
	if err := ssh.Unmarshal(rest, &h); err != nil {
		return nil, errCorrupt
	}
	return &h, nil
}

// describe fills info from the header and refuses what can be refused without the passphrase:
// several keys, DSA, FIDO keys, weak RSA, ciphers x/crypto cannot decrypt.
func (h *openSSHHeader) describe(info *Info) error {
	if h.NumKeys != 1 {
		return keyErr(ErrUnsupported, 0, "the file holds %d keys; Ferry needs a file with exactly one", h.NumKeys)
	}
	var algo struct {
		Type string
		Rest []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(h.PubKey, &algo); err != nil {
		return keyErr(ErrMalformed, 0, msgTruncated)
	}
	switch {
	case algo.Type == ssh.InsecureKeyAlgoDSA:
		return keyErr(ErrWeakKey, 0, msgDSA)
	case strings.HasPrefix(algo.Type, "sk-"):
		return keyErr(ErrUnsupported, 0, "this key lives on a FIDO security key, which must be touched at each login and cannot be used by a service; use a key without a hardware token (ssh-keygen -t ed25519)")
	}
	pub, err := ssh.ParsePublicKey(h.PubKey)
	if err != nil {
		if len(algo.Type) > 40 || !isPrintable(algo.Type) {
			return keyErr(ErrMalformed, 0, msgTruncated)
		}
		return keyErr(ErrUnsupported, 0, "unsupported key algorithm %q; use an ed25519, RSA or ECDSA key", algo.Type)
	}
	info.Fingerprint = ssh.FingerprintSHA256(pub)
	if cpk, ok := pub.(ssh.CryptoPublicKey); ok {
		if err := describePublic(cpk.CryptoPublicKey(), info); err != nil {
			return err
		}
	}
	info.Encrypted = h.CipherName != "none" || h.KdfName != "none"
	if info.Encrypted {
		if h.KdfName != "bcrypt" || (h.CipherName != "aes256-ctr" && h.CipherName != "aes256-cbc") {
			return keyErr(ErrUnsupported, 0, "the key is encrypted with %.40q/%.20q, which Ferry cannot decrypt; re-encrypt it with: ssh-keygen -p -f KEY", h.CipherName, h.KdfName)
		}
	}
	return nil
}

// errCorrupt is an internal marker turned into a line-aware message by ValidateKey.
var errCorrupt = errors.New("corrupt")

// describePKCS8 reads the algorithm of an unencrypted PKCS#8 key, refusing DSA and algorithms SSH
// cannot use before the key is parsed.
func describePKCS8(der []byte, info *Info) error {
	var p struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		return errCorrupt
	}
	switch oid := p.Algo.Algorithm; {
	case oid.Equal(oidDSA):
		return keyErr(ErrWeakKey, 0, msgDSA)
	case oid.Equal(oidRSA):
		info.Type = "rsa"
	case oid.Equal(oidEC):
		info.Type = "ecdsa"
	case oid.Equal(oidEd25519):
		info.Type = "ed25519"
	default:
		return keyErr(ErrUnsupported, 0, "unsupported key algorithm (OID %s); use an ed25519, RSA or ECDSA key", oid)
	}
	return nil
}

// describePublic fills Type and Bits and refuses RSA keys under MinRSABits.
func describePublic(pub any, info *Info) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		info.Type, info.Bits = "rsa", k.N.BitLen()
		if info.Bits < MinRSABits {
			return keyErr(ErrWeakKey, 0, "the RSA key is %d bits; at least %d are required, since shorter RSA keys are within reach of factoring (NIST disallowed them in 2013); %s", info.Bits, MinRSABits, msgNewKeyAdvice)
		}
	case *ecdsa.PublicKey:
		info.Type, info.Bits = "ecdsa", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		info.Type, info.Bits = "ed25519", 256
	}
	return nil
}

// describeKey fills Type and Bits from a parsed private key and applies the strength rules.
func describeKey(raw any, info *Info) error {
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if err := describePublic(&k.PublicKey, info); err != nil {
			return err
		}
		if err := k.Validate(); err != nil {
			return keyErr(ErrMalformed, 0, "the RSA key's numbers are inconsistent; the file is corrupted, copy it again")
		}
	case *ecdsa.PrivateKey:
		return describePublic(&k.PublicKey, info)
	case *ed25519.PrivateKey:
		return describeEd25519(*k, info)
	case ed25519.PrivateKey:
		return describeEd25519(k, info)
	default:
		return keyErr(ErrUnsupported, 0, "unsupported key algorithm; use an ed25519, RSA or ECDSA key")
	}
	return nil
}

// describeEd25519 checks that the stored public half is the one the seed derives: x/crypto takes
// it from the file as it is.
func describeEd25519(k ed25519.PrivateKey, info *Info) error {
	if len(k) != ed25519.PrivateKeySize {
		return keyErr(ErrMalformed, 0, msgTruncated)
	}
	derived := ed25519.NewKeyFromSeed(k.Seed())
	defer clear(derived)
	if !bytes.Equal(derived, k) {
		return keyErr(ErrMalformed, 0, msgHalves)
	}
	return describePublic(k.Public(), info)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}
