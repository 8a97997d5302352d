package e2e

// The web UI in a real browser: Debian's Chromium, driven by chromedp,
// against a real `npmgate serve` in front of the fake upstream.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Chromium (make chromium installs it); without it the
// browser tests skip, or fail when NPMGATE_REQUIRE_SERVICES=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("NPMGATE_REQUIRE_SERVICES") == "1" {
		t.Fatal("chromium is not installed (make chromium installs it) and NPMGATE_REQUIRE_SERVICES=1")
	}
	t.Skip("chromium is not installed: make chromium (apt-get install chromium); set NPMGATE_REQUIRE_SERVICES=1 to fail instead of skipping")
	return ""
}

// screenshotDir is where the browser tests save their screenshots:
// NPMGATE_UI_SCREENSHOTS when set, else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("NPMGATE_UI_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is a headless Chromium tab that records every URL it requests.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	urls []string
	dir  string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx, dir: screenshotDir(t)}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs actions with a deadline, failing the test on an error.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the visible text of the page's main element.
func (b *browser) text(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return s
}

// shot saves a full-page screenshot as name.png and logs its path.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// accessible checks the page through the browser's accessibility tree:
// every control (text box, search box, button, combo box, link) has a
// name a screen reader can say, and the page has a level-one heading.
func (b *browser) accessible(t *testing.T, where string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	tree, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (accessibility.GetFullAXTreeResult, error) {
		return cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	})
	if err != nil {
		t.Fatalf("%s: accessibility tree: %v", where, err)
	}
	controls, headings := 0, 0
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := strings.Trim(string(n.Role.Value), `"`)
		switch role {
		case "textbox", "searchbox", "button", "combobox", "link":
			controls++
			if n.Name == nil || strings.Trim(string(n.Name.Value), `" `) == "" {
				t.Errorf("%s: a %s has no accessible name", where, role)
			}
		case "heading":
			headings++
		}
	}
	if controls == 0 || headings == 0 {
		t.Errorf("%s: the accessibility tree has %d controls and %d headings", where, controls, headings)
	}
}

// dark switches the page to the dark colour scheme, as a system set to
// dark does.
func (b *browser) dark(t *testing.T) {
	t.Helper()
	b.do(t, "dark mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
}

func mustContain(t *testing.T, where, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: the page does not say %q; it says:\n%.2000s", where, w, text)
		}
	}
}

// TestUIInABrowser: a new user opens the registry URL in a browser, sees
// the feed and its policy, searches, opens a package and reads why a
// version is blocked; no page asks another origin for anything.
func TestUIInABrowser(t *testing.T) {
	chromiumPath(t)
	up := startUpstream(t, "")
	g, cfgFile := fltStartGate(t, up.URL, fltConfig(up.URL, `block: ["ms@<2.1.0"]`, "min_release_age: 1d")+"auth:\n  admins: [alice]\n")
	addGateUser(t, cfgFile, g.Data, "alice", alicePassword)
	addGateUser(t, cfgFile, g.Data, "bob", "bob's password")
	bobToken := cliToken(t, g, cfgFile, "--user", "bob")
	// What npm installed before: the packages the feed has cached.
	for _, name := range []string{"ms", "debug", "chalk"} {
		if r := get(t, g.URL+name, "Accept", "application/json"); r.status != 200 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	b := newBrowser(t)

	b.do(t, "open the registry URL", chromedp.Navigate(g.URL), chromedp.WaitVisible(chromedp.CSS("h1")))
	home := b.text(t)
	mustContain(t, "home", home, "Feeds", "npm", "default", "Cached packages", "npmjs",
		"Blocked version ranges: ms@<2.1.0.", "Cooldown: versions are served 1d after they are published.")
	b.accessible(t, "home")
	b.shot(t, "home")

	b.do(t, "search", chromedp.SendKeys(chromedp.CSS("#q"), "millisecond"), chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("ol.results")))
	mustContain(t, "search", b.text(t), "1 package found", "ms", "cached from npmjs", "Tiny millisecond conversion utility")
	b.accessible(t, "search")
	b.shot(t, "search")

	b.do(t, "open the package", chromedp.Click(chromedp.CSS(`ol.results a[href="/-/ui/package/npm/ms"]`)),
		chromedp.WaitVisible(chromedp.CSS("table")))
	pkg := b.text(t)
	mustContain(t, "package", pkg, "ms", "Install ms@2.1.3", "npm install ms@2.1.3 --registry="+g.URL,
		"yarn add ms@2.1.3", "pnpm add ms@2.1.3", "Download the tarball", "Dist-tags", "latest",
		"blocked (block): ms@2.0.0 is blocked by block entry \"ms@<2.1.0\"")
	b.accessible(t, "package")
	b.shot(t, "package")

	b.do(t, "open a blocked version", chromedp.Click(chromedp.CSS(`th a[href="?v=2.0.0"]`)),
		chromedp.WaitVisible(chromedp.CSS("section p.blocked")))
	mustContain(t, "blocked version", b.text(t), "Version 2.0.0 is blocked by the rule block: ms@2.0.0 is blocked by block entry \"ms@<2.1.0\"")
	b.shot(t, "blocked-version")

	// Sign in, make a token for CI, see it work, revoke it, sign out.
	b.do(t, "sign in", chromedp.Click(chromedp.CSS(`a[href="/-/ui/signin"]`)), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"), chromedp.SendKeys(chromedp.CSS("#password"), alicePassword),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("#tokens")))
	mustContain(t, "account", b.text(t), "Your account", "Feeds you may publish to", "npm", "session (this session)")
	b.do(t, "create a token", chromedp.SendKeys(chromedp.CSS("#token-name"), "ci build"),
		chromedp.Click(chromedp.CSS(`form[action="/-/ui/account/tokens"] button`)), chromedp.WaitVisible(chromedp.CSS("#secret")))
	b.accessible(t, "account")
	b.shot(t, "token-created")
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#secret")))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if r := get(t, g.URL+"ms", "Authorization", "Bearer "+secret); r.status != 200 {
		t.Fatalf("the token the page showed does not work: %d %s", r.status, r.body)
	}
	b.do(t, "revoke the token", chromedp.Click(chromedp.CSS(`button[aria-label^="Revoke"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	mustContain(t, "revoked", b.text(t), "The token was revoked.")
	if r := get(t, g.URL+"ms", "Authorization", "Bearer "+secret); r.status != 401 {
		t.Errorf("the revoked token still works: %d", r.status)
	}
	// alice, an admin, disables bob: his token stops working at once.
	if r := get(t, g.URL+"ms", "Authorization", "Bearer "+bobToken); r.status != 200 {
		t.Fatalf("bob's token before: %d %s", r.status, r.body)
	}
	b.do(t, "disable bob", chromedp.Click(chromedp.CSS(`button[aria-label="Disable bob"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Enable bob"]`)))
	mustContain(t, "user disabled", b.text(t), "User bob was disabled and 1 token revoked.", "bob", "disabled", "alice (you)")
	b.accessible(t, "users")
	b.shot(t, "user-disabled")
	if r := get(t, g.URL+"ms", "Authorization", "Bearer "+bobToken); r.status != 401 {
		t.Errorf("disabled bob's token: %d", r.status)
	}
	b.do(t, "sign out", chromedp.Click(chromedp.CSS(`form[action="/-/ui/signout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/-/ui/signin"]`)))
	mustContain(t, "signed out", b.text(t), "Feeds")

	// The same pages in the dark scheme.
	b.dark(t)
	b.do(t, "package, dark", chromedp.Navigate(g.URL+"-/ui/package/npm/ms?v=2.0.0"), chromedp.WaitVisible(chromedp.CSS("table")))
	b.shot(t, "package-dark")

	b.mu.Lock()
	defer b.mu.Unlock()
	origin := strings.TrimSuffix(g.URL, "/")
	for _, u := range b.urls {
		if !strings.HasPrefix(u, origin+"/") && u != origin && !strings.HasPrefix(u, "data:") && u != "about:blank" {
			t.Errorf("a page asked another origin: %s", u)
		}
	}
	if len(b.urls) < 4 {
		t.Errorf("the browser made %d requests (%v): the network events were not seen", len(b.urls), b.urls)
	}
}
