package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/pgstore"
	"github.com/npmgate/npmgate/proxy"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// adminFlags are the flags every credential command takes to find the
// data directory: the same --config and --data as serve.
func adminFlags(name string, stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := &serveFlags{}
	fs.StringVar(&sf.configFile, "config", os.Getenv("NPMGATE_CONFIG"), "configuration file [$NPMGATE_CONFIG]")
	fs.StringVar(&sf.data, "data", os.Getenv("NPMGATE_DATA"), "data directory [$NPMGATE_DATA]")
	return fs, sf
}

// parseInterleaved parses flags that may come after positional arguments
// ("user add alice --data d"), which the flag package alone does not.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// openAuth opens the credentials the server uses: the shared database
// when the configuration has one, else the files in the data directory.
// where says which, for messages; release closes the database.
func openAuth(sf *serveFlags) (s *auth.Service, cfg *config.Config, where string, release func(), err error) {
	cfg, err = loadConfig(sf)
	if err != nil {
		return nil, nil, "", nil, err
	}
	opts := auth.Options{UsersFile: cfg.UsersFile(), TokensFile: cfg.TokensFile(), Groups: cfg.Auth.Groups,
		DefaultTTL: cfg.Auth.Tokens.DefaultTTL.D(), MaxTTL: cfg.Auth.Tokens.MaxTTL.D(), TwoFactorFile: cfg.TwoFactorFile()}
	where, release = cfg.UsersFile(), func() {}
	if cfg.Database.Enabled() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := pgstore.Open(ctx, cfg.Database)
		if err != nil {
			return nil, nil, "", nil, fmt.Errorf("database: %w", err)
		}
		opts.Users, opts.Tokens, opts.TwoFactorStore = db.Users(), db.Tokens(), db.TwoFactor()
		where, release = "the database", db.Close
	}
	s, err = auth.New(opts)
	if err != nil {
		release()
		return nil, nil, "", nil, err
	}
	return s, cfg, where, release, nil
}

// toolServer builds the server a tool (explain, gc) reads through, with
// its log discarded. It starts no background loops (that is Run, which
// only serve calls), so it neither evicts nor walks a data directory a
// running server uses.
func toolServer(cfg *config.Config) (*proxy.Server, error) {
	return proxy.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// readPassword asks on a terminal without echo, or reads one line from a
// pipe (for scripts: echo "$PW" | npmgate user add alice).
func readPassword(stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const usage = "usage: npmgate user add|passwd|rm|disable|enable|list [NAME] | user 2fa enable|disable NAME [--config FILE] [--data DIR]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs, sf := adminFlags("user "+args[0], stderr)
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return 2
	}
	s, _, where, closeAuth, err := openAuth(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	defer closeAuth()
	if args[0] == "list" {
		return userList(s, stdout, stderr)
	}
	if args[0] == "2fa" && len(pos) == 2 && (pos[0] == "enable" || pos[0] == "disable") {
		return userTwoFactor(s, pos[0] == "enable", pos[1], stdout, stderr)
	}
	if len(pos) == 1 && (args[0] == "disable" || args[0] == "enable") {
		return userDisable(s, args[0] == "disable", pos[0], stdout, stderr)
	}
	if len(pos) != 1 || (args[0] != "add" && args[0] != "passwd" && args[0] != "rm") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if args[0] == "rm" {
		return userRemove(s, pos[0], stdout, stderr)
	}
	return userSave(s, args[0] == "add", pos[0], where, stdin, stdout, stderr)
}

// userSave adds a user (add) or sets an existing one's password.
func userSave(s *auth.Service, add bool, name, where string, stdin io.Reader, stdout, stderr io.Writer) int {
	exists, err := s.Users.Exists(name)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	if add && exists {
		fmt.Fprintf(stderr, "npmgate: user %q exists; use npmgate user passwd\n", name)
		return 1
	}
	if !add && !exists {
		fmt.Fprintf(stderr, "npmgate: no user %q\n", name)
		return 1
	}
	pw, err := readPassword(stdin, stderr, "Password for "+name+": ")
	if err == nil {
		err = s.Users.Set(name, pw)
	}
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "user %s saved in %s\n", name, where)
	return 0
}

// userRemove removes a user; a removed user's tokens go with it.
func userRemove(s *auth.Service, name string, stdout, stderr io.Writer) int {
	if err := s.Users.Remove(name); err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	tokens, err := s.Tokens.List(name)
	for _, t := range tokens {
		if err == nil {
			_, err = s.Tokens.Revoke(t.Key)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "npmgate: user %s removed, but revoking their tokens failed: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "user %s removed, and their tokens revoked\n", name)
	return 0
}

// userDisable disables a user (revoking their tokens) or enables one.
func userDisable(s *auth.Service, disable bool, name string, stdout, stderr io.Writer) int {
	if !disable {
		if err := s.EnableUser(name); err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "user %s enabled: their password works again (their revoked tokens stay revoked)\n", name)
		return 0
	}
	n, err := s.DisableUser(name)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	tokens := "tokens"
	if n == 1 {
		tokens = "token"
	}
	fmt.Fprintf(stdout, "user %s disabled, and %d %s revoked\n", name, n, tokens)
	return 0
}

func userList(s *auth.Service, stdout, stderr io.Writer) int {
	users, err := s.Users.List()
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	for _, u := range users {
		if u.Disabled {
			fmt.Fprintln(stdout, u.Name, "(disabled)")
		} else {
			fmt.Fprintln(stdout, u.Name)
		}
	}
	return 0
}

// parseTTL reads 30d, 12h, 90m; "" is no expiry.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--expires %q: use for example 30d, 12h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: use for example 30d, 12h", s)
	}
	return d, nil
}

func tokenCmd(args []string, stdout, stderr io.Writer, apiKey bool) int {
	cmdName := "token"
	usage := "usage: npmgate token create --user NAME [--read-only] [--feed F]... [--expires 30d] [--package P]... [--cidr RANGE]... [--max-uses N] [--automation] | token list [--user NAME] | token revoke KEY"
	kind := "token"
	if apiKey {
		cmdName, kind = "apikey", "api-key"
		usage = "usage: npmgate apikey create --name NAME [--publish] [--feed F]... [--expires 90d] | apikey list | apikey revoke KEY"
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs, sf := adminFlags(cmdName+" "+args[0], stderr)
	tf := tokenFlags{apiKey: apiKey, kind: kind, usage: usage}
	fs.StringVar(&tf.user, "user", "", "the user the token acts as")
	fs.StringVar(&tf.user, "name", "", "the name the API key acts as (in logs, whoami and access lists)")
	fs.BoolVar(&tf.readOnly, "read-only", false, "the token can read but never publish")
	fs.BoolVar(&tf.publish, "publish", false, "the API key may publish (API keys are read-only without it)")
	fs.Var(&tf.feeds, "feed", "limit to this feed (repeatable)")
	fs.StringVar(&tf.expires, "expires", "", "lifetime, for example 30d or 12h (default: auth.tokens.default_ttl for write tokens, no expiry for read-only ones)")
	fs.Var(&tf.packages, "package", "limit writes to this package or pattern, e.g. @acme/* (repeatable)")
	fs.Var(&tf.cidrs, "cidr", "limit use to this client address range, e.g. 10.0.0.0/8 (repeatable)")
	fs.IntVar(&tf.maxUses, "max-uses", 0, "writes the token may make (default: unlimited)")
	fs.BoolVar(&tf.automation, "automation", false, "a CI token: skips two-factor checks")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return 2
	}
	s, cfg, _, closeAuth, err := openAuth(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	defer closeAuth()
	switch {
	case args[0] == "create":
		return tokenCreate(s, cfg, tf, stdout, stderr)
	case args[0] == "list":
		return tokenList(s, tf, stdout, stderr)
	case args[0] == "revoke" && len(pos) == 1:
		t, err := s.Tokens.Revoke(pos[0])
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s %s… of %s\n", kind, t.Prefix, t.User)
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

// tokenFlags are the flags of token and apikey.
type tokenFlags struct {
	apiKey            bool
	kind, usage       string
	user, expires     string
	readOnly, publish bool
	feeds             stringList
	packages, cidrs   stringList
	maxUses           int
	automation        bool
}

func tokenCreate(s *auth.Service, cfg *config.Config, tf tokenFlags, stdout, stderr io.Writer) int {
	ttl, err := parseTTL(tf.expires)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 2
	}
	if err := auth.ValidateUserName(tf.user); err != nil {
		fmt.Fprintln(stderr, "npmgate:", err, "\n"+tf.usage)
		return 2
	}
	if !tf.apiKey {
		exists, err := s.Users.Exists(tf.user)
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		if !exists {
			fmt.Fprintf(stderr, "npmgate: no user %q (npmgate user add %s)\n", tf.user, tf.user)
			return 1
		}
	}
	for _, f := range tf.feeds {
		if cfg.Feeds[f] == nil {
			fmt.Fprintf(stderr, "npmgate: no feed %q in the configuration\n", f)
			return 1
		}
	}
	ro := tf.readOnly
	if tf.apiKey {
		ro = !tf.publish
	}
	if err := auth.ValidateLimits(tf.packages, tf.cidrs); err != nil || tf.maxUses < 0 {
		fmt.Fprintln(stderr, "npmgate:", cmp.Or(err, errors.New("--max-uses is a count of writes, 0 for unlimited")))
		return 2
	}
	if ttl, err = s.TokenTTL(ttl, ro); err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 2
	}
	secret, t, err := s.Tokens.Create(auth.NewToken{User: tf.user, APIKey: tf.apiKey, Name: "cli", ReadOnly: ro, Feeds: tf.feeds, TTL: ttl,
		Packages: tf.packages, CIDRs: tf.cidrs, MaxUses: tf.maxUses, Automation: tf.automation}, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "%s %s for %s (key %s, read-only %v). It is shown only now.\n", tf.kind, t.Prefix+"…", tf.user, t.Key[:16], t.ReadOnly)
	return 0
}

func tokenList(s *auth.Service, tf tokenFlags, stdout, stderr io.Writer) int {
	tokens, err := s.Tokens.List(tf.user)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tTOKEN\tUSER\tREAD-ONLY\tFEEDS\tCREATED\tEXPIRES\tPACKAGES\tCIDRS\tUSES\tLAST-USED")
	for _, t := range tokens {
		if t.Kind != tf.kind {
			continue
		}
		exp := "never"
		if !t.Expires.IsZero() {
			exp = t.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s…\t%s\t%v\t%s\t%s\t%s\t%s\n", t.Key[:16], t.Prefix, t.User, t.ReadOnly, strings.Join(t.Feeds, ","), t.Created.Format(time.RFC3339), exp, limitsColumns(t))
	}
	w.Flush()
	return 0
}

// limitsColumns are the PACKAGES, CIDRS, USES and LAST-USED columns of
// token list.
func limitsColumns(t *auth.Token) string {
	uses := "-"
	if t.MaxUses > 0 {
		uses = fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
	}
	last := "never"
	if !t.LastUsed.IsZero() {
		last = t.LastUsed.Format(time.RFC3339)
	}
	return strings.Join([]string{cmp.Or(strings.Join(t.Packages, ","), "any"), cmp.Or(strings.Join(t.CIDRs, ","), "any"), uses, last}, "\t")
}

// userTwoFactor enrols a user in two-factor authentication, printing the
// otpauth:// URI for an authenticator app and the recovery codes (shown
// only now), or removes their second factor.
func userTwoFactor(s *auth.Service, enable bool, name string, stdout, stderr io.Writer) int {
	if s.TwoFactor == nil {
		fmt.Fprintln(stderr, "npmgate: this configuration keeps no second factors")
		return 1
	}
	exists, err := s.Users.Exists(name)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	if !exists {
		fmt.Fprintf(stderr, "npmgate: no user %q\n", name)
		return 1
	}
	if !enable {
		if err := s.TwoFactor.Disable(name); err != nil {
			fmt.Fprintf(stderr, "npmgate: %s has no second factor\n", name)
			return 1
		}
		fmt.Fprintf(stdout, "two-factor authentication disabled for %s\n", name)
		return 0
	}
	uri, codes, err := s.TwoFactor.Enable(name, "npmgate")
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	fmt.Fprintln(stdout, uri)
	for _, c := range codes {
		fmt.Fprintln(stdout, c)
	}
	fmt.Fprintf(stderr, "Add the otpauth:// URI to an authenticator app; the recovery codes each work once. Both are shown only now.\n")
	return 0
}
