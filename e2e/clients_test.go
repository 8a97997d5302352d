package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClients installs the fixture project's dependencies, without a
// lockfile, with yarn 1, yarn 4 (berry) and pnpm 10, each against its own
// cold npmgate. The subtests run one after the other.
func TestClients(t *testing.T) {
	fixture := fixtureLockfile(t)
	clients := []struct {
		name string
		tool string
		// install prepares the project and runs the client.
		install func(t *testing.T, sb *sandbox, tool, project, registry string) result
	}{
		{"yarn1", toolYarn1, func(t *testing.T, sb *sandbox, tool, project, registry string) result {
			return sb.node(t, project, tool, "install", "--non-interactive", "--no-lockfile",
				"--registry", registry, "--cache-folder", sb.dir(t, "yarn1-cache"),
				"--network-timeout", "60000")
		}},
		{"yarn4", toolYarn4, func(t *testing.T, sb *sandbox, tool, project, registry string) result {
			rc := fmt.Sprintf("npmRegistryServer: %q\n"+
				"unsafeHttpWhitelist:\n  - \"127.0.0.1\"\n"+
				"nodeLinker: node-modules\n"+
				"enableGlobalCache: false\n"+
				"cacheFolder: %q\n"+
				"enableTelemetry: false\n"+
				"enableImmutableInstalls: false\n",
				strings.TrimSuffix(registry, "/"), sb.dir(t, "yarn4-cache"))
			if err := os.WriteFile(filepath.Join(project, ".yarnrc.yml"), []byte(rc), 0o644); err != nil {
				t.Fatal(err)
			}
			return sb.node(t, project, tool, "install")
		}},
		{"pnpm", toolPnpm, func(t *testing.T, sb *sandbox, tool, project, registry string) result {
			return sb.node(t, project, tool, "install", "--registry", registry,
				"--store-dir", sb.dir(t, "pnpm-store"), "--no-frozen-lockfile")
		}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			tool := toolPath(t, c.tool)
			up := startUpstream(t, "")
			g := startGate(t, up.URL, "")
			sb := newSandbox(t)
			project := sb.copyProject(t, c.name)
			removeFile(t, filepath.Join(project, "package-lock.json"))

			mustSucceed(t, c.install(t, sb, tool, project, g.URL))

			checkDirectDeps(t, project, fixture.Deps)
			if st := up.Requests(); st.Tarballs == 0 {
				t.Errorf("upstream saw no tarball request: %v", st.Paths)
			}
			// The recorded registry has the tarballs of exactly the
			// fixture's tree, and every one was fetched through npmgate.
			checkStore(t, g.Data, fixture)
		})
	}
}
