package policy

import (
	"fmt"
	"strconv"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/trustpub"
)

// compileTrusted compiles publishing.trusted into trusted publishers, with
// the line of the entry that is wrong.
func compileTrusted(c *config.Config) ([]trustpub.Publisher, error) {
	var out []trustpub.Publisher
	for i, t := range c.Publishing.Trusted {
		p := trustpub.Publisher{Packages: t.Packages, Feed: t.Feed, Issuer: t.Issuer, Provider: trustpub.GitHub,
			Repository: t.Repository, Workflow: t.Workflow, Environment: t.Environment, Ref: t.Ref, User: t.User}
		if t.ProjectPath != "" || t.CIConfigPath != "" {
			p.Provider, p.Repository, p.Workflow = trustpub.GitLab, t.ProjectPath, t.CIConfigPath
		}
		at := func(err error) error {
			return c.At(fmt.Sprintf("publishing.trusted[%d]: %v", i, err), "publishing", "trusted", strconv.Itoa(i))
		}
		if err := p.Validate(); err != nil {
			return nil, at(err)
		}
		if err := auth.ValidateUserName(p.Principal()); err != nil {
			return nil, at(fmt.Errorf("user: %w", err))
		}
		out = append(out, p)
	}
	return out, nil
}
