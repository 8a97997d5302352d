package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/sign"
)

// ensureSigningKey makes the data directory's signing key at the first
// start of a server on one machine. Replicas are never given a key of
// their own: each would sign with a different one.
func ensureSigningKey(cfg *config.Config, log *slog.Logger) error {
	if cfg.SigningConfigured() {
		return nil
	}
	if cfg.Database.Enabled() {
		log.Warn("local packages are not signed: replicas sign only with a key they share; set signing.key_file, or signing.key: ${NPMGATE_SIGNING_KEY} (npmgate signing-key generate --base64 makes one)")
		return nil
	}
	made, err := sign.Create(cfg.SigningKeyFile())
	if made {
		log.Info("made the registry signing key", "file", cfg.SigningKeyFile())
	}
	return err
}

// signingKeyCmd prints a new private key (generate) or the server's
// public key as /-/npm/v1/keys lists it (show).
func signingKeyCmd(args []string, stdout, stderr io.Writer) int {
	const use = "usage: npmgate signing-key generate [--base64] | show [--config FILE | --data DIR]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, use)
		return 2
	}
	switch args[0] {
	case "generate":
		// --config and --data are taken, as by every admin command, and
		// not needed: the key is printed, never stored.
		fs, _ := adminFlags("signing-key generate", stderr)
		oneLine := fs.Bool("base64", false, "print the base64 of the PKCS#8 DER in one line, for an environment variable (signing.key)")
		if rest, err := parseInterleaved(fs, args[1:]); err != nil || len(rest) > 0 {
			fmt.Fprintln(stderr, use)
			return 2
		}
		b, err := sign.Generate()
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		if *oneLine {
			block, _ := pem.Decode(b)
			fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(block.Bytes))
			return 0
		}
		stdout.Write(b)
		return 0
	case "show":
		fs, sf := adminFlags("signing-key show", stderr)
		if _, err := parseInterleaved(fs, args[1:]); err != nil {
			return 2
		}
		cfg, err := loadConfig(sf)
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		s, err := cfg.LoadSigner()
		switch {
		case err == nil && s == nil && cfg.Database.Enabled():
			err = errors.New("no signing key: replicas sign only with signing.key_file or signing.key, which this configuration does not set")
		case err == nil && s == nil:
			err = fmt.Errorf("no signing key yet: npmgate serve makes %s at its first start, or set signing.key_file", cfg.SigningKeyFile())
		}
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		b, _ := json.MarshalIndent(s.PublicKey(), "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprintln(stderr, use)
	return 2
}
