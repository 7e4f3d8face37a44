package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/ferryhpc/ferry/plugin/contract"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one parsed template set per page: the layout plus that page's "content".
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"exit": func(c *int) string {
		if c == nil {
			return "—"
		}
		return fmt.Sprint(*c)
	},
	"statusLabel": statusLabel,
	"dash": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"join":  strings.Join,
	"split": strings.Fields,
	"deref": func(b *bool) bool { return b != nil && *b },
	"jobTable": func(jobs []jobJSON, identity, csrf, back string) jobTableData {
		return jobTableData{Jobs: jobs, Identity: identity, CSRF: csrf, Back: back, Live: "true"}
	},
}

// jobTableData is what the shared "jobtable" template gets: the rows, the identity the live
// updates are for ("" for all the caller may see) and where a cancel returns to.
type jobTableData struct {
	Jobs                       []jobJSON
	Identity, CSRF, Back, Live string
}

// statusLabel is how a credential status reads on the Users tab.
func statusLabel(s string) string {
	switch s {
	case contract.CredMissing:
		return "Missing credentials"
	case contract.CredAdded:
		return "Added"
	case contract.CredVerified:
		return "Verified"
	case contract.CredFailing:
		return "Failing"
	case contract.CredHeld:
		return "Held"
	}
	return s
}

func loadPages() (*pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout template: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := layout.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, n); err != nil {
			return nil, fmt.Errorf("web: template %s: %w", base, err)
		}
		p.byName[base] = t
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Title  string
	Nav    string // which menu entry is current
	Me     *meView
	CSRF   string
	Notice string // a success message
	Error  string // what went wrong, shown at the top of the form
	Data   any
}

type meView struct {
	Name  string
	Owner bool
}

// render writes page with v, answering status. A template error is a 500 (and logged).
func (s *Server) render(w http.ResponseWriter, status int, page string, v view) {
	t, ok := s.pages.byName[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error().Err(err).Str("page", page).Msg("render page")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}
