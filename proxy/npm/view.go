package npm

// Raw is the version object as the document holds it, for readers that
// show more of it than npmgate decides on (the web UI). It must not be
// changed.
func (v *Version) Raw() []byte { return v.raw }

// Member is the raw value of a top-level member of the document other
// than versions, dist-tags and time ("description", "readme",
// "maintainers"), nil when absent. It must not be changed.
func (p *Packument) Member(key string) []byte { return p.other[key] }
