package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ferryhpc/ferry/internal/testcluster"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// The console tested as people use it: headless Chromium (Debian's chromium, which
// scripts/browser-up installs) driven by chromedp, against a real agent on the local cluster.

// chromium returns the browser's path, or skips the test saying how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: scripts/browser-up installs Debian's chromium (make test runs it)")
	return ""
}

// browser starts one headless Chromium for the test; each person gets their own browser context
// (their own cookies) in it.
type browser struct {
	t     *testing.T
	alloc context.Context // the browser's first tab: people's contexts are made from it
	shots string          // where screenshots go
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1366, 900), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("lang", "en-GB"))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	// Start the browser now, so that a missing library fails here, named.
	require.NoError(t, chromedp.Do(root, chromedp.Navigate("about:blank")), "start chromium (%s)", path)
	shots := os.Getenv("FERRY_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	return &browser{t: t, alloc: root, shots: shots}
}

// person is one browser context: one person's tab with their own cookies.
type person struct {
	b   *browser
	ctx context.Context
}

func (b *browser) person(name string) *person {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	require.NoError(b.t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "open a browser context for %s", name)
	return &person{b: b, ctx: ctx}
}

func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.failed(err)
	}
}

// failed reports err with where the page is and what it says, and saves a screenshot.
func (p *person) failed(err error) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(90)); serr == nil {
		_ = os.WriteFile(filepath.Join(p.b.shots, "failure.png"), png, 0o644)
	}
	p.b.t.Fatalf("browser: %v\nat %s\n%s", err, loc, body)
}

func (p *person) text(sel string) string {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.b.t, err, "text of %s", sel)
	return s
}

func (p *person) eval(js string) bool {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	require.NoError(p.b.t, err, js)
	return v
}

func (p *person) value(sel string) string {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(p.b.t, err, "value of %s", sel)
	return s
}

// shot saves a screenshot of the whole page as NAME.png.
func (p *person) shot(name string) {
	p.b.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(p.b.t, err)
	require.NoError(p.b.t, os.WriteFile(filepath.Join(p.b.shots, name+".png"), png, 0o644))
}

func (p *person) signIn(url, member, password string) {
	p.b.t.Helper()
	p.do(chromedp.Navigate(url+"/signin"), chromedp.WaitVisible(chromedp.CSS("#member")),
		chromedp.SetValue(chromedp.CSS("#member"), member), chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#me")))
}

// TestConsoleInBrowser clicks through the console: the owner signs in, adds the local cluster's
// identity (scanning its host key and confirming it) and invites alice; alice accepts, sees
// Missing credentials, gets the wrong-passphrase message, pastes her key and passphrase, sees
// Added and runs Test (green); bob cannot change alice's row; a job the launcher submits as alice
// appears on her Jobs view and reaches completed without a reload.
func TestConsoleInBrowser(t *testing.T) {
	c := testcluster.Require(t)
	b := newBrowser(t)
	f := newFront(t, nil)
	require.NoError(t, f.agent.SetPassword(rootCtx, "olivia", []byte("olivia's console password")))
	require.NoError(t, f.agent.SetPassword(rootCtx, "bob", []byte("bob's console password")))

	// alice's key with a passphrase: the same key pair re-encrypted (already authorized on the
	// cluster), so she has a passphrase to paste.
	keyFile := filepath.Join(t.TempDir(), "alice")
	orig, err := os.ReadFile(c.User(t, "alice").Key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, orig, 0o600))
	out, err := exec.Command("ssh-keygen", "-p", "-q", "-f", keyFile, "-P", "", "-N", "alice's key passphrase").CombinedOutput()
	require.NoError(t, err, string(out))
	key, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Contains(t, string(key), "BEGIN OPENSSH PRIVATE KEY")

	// The owner signs in and adds the identity.
	owner := b.person("olivia")
	owner.do(chromedp.Navigate(f.url+"/identities"), chromedp.WaitVisible(chromedp.CSS("#member")))
	require.True(t, owner.eval(`location.pathname === "/signin"`), "a visitor who is not signed in is sent to sign in")
	owner.shot("signin")
	owner.signIn(f.url, "olivia", "olivia's console password")
	owner.do(chromedp.Navigate(f.url+"/identities"), chromedp.WaitVisible(chromedp.CSS("#add-identity")),
		chromedp.SetValue(chromedp.CSS("#name"), "local"),
		chromedp.SetValue(chromedp.CSS("#host"), c.Host),
		chromedp.SetValue(chromedp.CSS("#port"), "2222"),
		chromedp.SetValue(chromedp.CSS("#work_dir"), c.WorkDir),
		chromedp.SetValue(chromedp.CSS("#group"), c.Group),
		chromedp.Click(chromedp.CSS("#scan")), chromedp.WaitVisible(chromedp.CSS("#scanned")))
	hostKeyType := strings.Fields(c.KnownHosts)[1]
	owner.do(chromedp.Click(chromedp.CSS(`input[name="trust"][value*="` + hostKeyType + `"]`)))
	owner.shot("add-identity")
	owner.do(chromedp.Click(chromedp.CSS("#create")), chromedp.WaitVisible(chromedp.CSS("#users")))
	require.Contains(t, owner.text(`tr[data-member="alice"] .cred`), "Missing credentials")

	// ... and invites alice.
	owner.do(chromedp.Navigate(f.url+"/members"), chromedp.WaitVisible(chromedp.CSS("#members")),
		chromedp.Click(chromedp.CSS(`tr[data-member="alice"] button.invite`)), chromedp.WaitVisible(chromedp.CSS("#invite-url")))
	invite := owner.value("#invite-url")
	require.True(t, strings.HasPrefix(invite, f.url+"/invite/"), invite)
	owner.shot("members")

	// alice accepts the invitation and signs in.
	alice := b.person("alice")
	alice.do(chromedp.Navigate(invite), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SetValue(chromedp.CSS("#password"), "alice's console password"),
		chromedp.SetValue(chromedp.CSS("#password2"), "alice's console password"),
		chromedp.Click(chromedp.CSS("#set-password")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	require.Contains(t, alice.text(".notice"), "password is set")
	alice.signIn(f.url, "alice", "alice's console password")

	// Her row says Missing credentials; a wrong passphrase shows its message.
	alice.do(chromedp.Navigate(f.url+"/identities/local?tab=users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	require.Equal(t, "Missing credentials", alice.text(`tr[data-member="alice"] .cred`))
	alice.do(chromedp.Click(chromedp.CSS(`tr[data-member="alice"] a.button`)), chromedp.WaitVisible(chromedp.CSS("#private_key")),
		chromedp.SetValue(chromedp.CSS("#private_key"), string(key)),
		chromedp.SetValue(chromedp.CSS("#passphrase"), "not the passphrase"),
		chromedp.Click(chromedp.CSS("#save-credential")), chromedp.WaitVisible(chromedp.CSS("#error")))
	require.Contains(t, alice.text("#error"), "incorrect passphrase")
	require.Empty(t, alice.value("#private_key"), "the pasted key is not sent back in the page")
	alice.shot("wrong-passphrase")

	// The right passphrase: Added.
	alice.do(chromedp.SetValue(chromedp.CSS("#private_key"), string(key)),
		chromedp.SetValue(chromedp.CSS("#passphrase"), "alice's key passphrase"),
		chromedp.Click(chromedp.CSS("#save-credential")), chromedp.WaitVisible(chromedp.CSS("#users")))
	require.Equal(t, "Added", alice.text(`tr[data-member="alice"] .cred`))
	require.Contains(t, alice.text(".notice"), "Credentials added")

	// Test: every check green.
	alice.do(chromedp.Click(chromedp.CSS(`tr[data-member="alice"] button.test`)), chromedp.WaitVisible(chromedp.CSS("#checks")))
	require.True(t, alice.eval(`document.querySelectorAll("#checks tbody tr.ok").length >= 5`), "the checks ran")
	require.True(t, alice.eval(`document.querySelectorAll("#checks tbody tr.fail").length === 0`), "no check failed: %s", alice.text("#checks"))
	require.Equal(t, "Verified", alice.text(`tr[data-member="alice"] .cred`), "the test's login verified the credential")
	alice.shot("users-test")

	// bob sees alice's row but cannot change it.
	bob := b.person("bob")
	bob.signIn(f.url, "bob", "bob's console password")
	bob.do(chromedp.Navigate(f.url+"/identities/local?tab=users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	require.True(t, bob.eval(`document.querySelector('tr[data-member="alice"] td.actions').querySelectorAll("a, button, form").length === 0`),
		"bob has no action on alice's row")
	require.True(t, bob.eval(`document.querySelector('tr[data-member="bob"] td.actions').querySelectorAll("a.button").length === 1`),
		"bob can add his own")
	bob.do(chromedp.Navigate(f.url+"/identities/local/users/alice/credential"), chromedp.WaitVisible(chromedp.CSS("#error")))
	require.Contains(t, bob.text("#error"), "may act only for themselves")

	// A job the launcher submits as alice appears on her Jobs view and completes, live.
	alice.do(chromedp.Navigate(f.url+"/jobs"), chromedp.WaitVisible(chromedp.CSS(`table.jobs`)))
	require.True(t, waitTrue(alice, `document.querySelector("table.jobs").dataset.live === "open"`, 20*time.Second), "the event stream is open")
	job, err := f.agent.Submit(context.Background(), contract.SubmitRequest{Identity: "local", User: "alice", Name: "from-the-launcher",
		Script: []byte("sleep 2; echo done\n")})
	require.NoError(t, err)
	alice.do(chromedp.WaitVisible(chromedp.CSS(`tr[data-job-id="` + job.ID + `"]`)))
	require.Equal(t, "from-the-launcher", alice.text(`tr[data-job-id="`+job.ID+`"] td[data-field="name"]`))
	ctx, cancel := context.WithTimeout(alice.ctx, 3*time.Minute)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-job-id="`+job.ID+`"] span.state-completed`))),
		"the job reached completed on the page without a reload")
	require.Equal(t, "0", alice.text(`tr[data-job-id="`+job.ID+`"] td[data-field="exit_code"]`))
	alice.shot("jobs")

	// The owner's views, for the README.
	owner.do(chromedp.Navigate(f.url+"/identities/local?tab=users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	owner.shot("users-owner")
	owner.do(chromedp.Navigate(f.url+"/identities"), chromedp.WaitVisible(chromedp.CSS("#identities")))
	owner.shot("identities")
	owner.do(chromedp.Navigate(f.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	owner.shot("audit")
	page, err := chromedp.Run(owner.ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	require.NoError(t, err)
	require.NotContains(t, page, strings.Split(string(key), "\n")[2], "no key material on any page")
	require.NotContains(t, page, "alice's key passphrase")
}

// waitTrue polls a JavaScript condition until it holds or within passes.
func waitTrue(p *person, js string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p.eval(js) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}
