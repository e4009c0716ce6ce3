package mail

import (
	"fmt"
	"net/url"
	"strings"
)

// Links builds absolute links to Keyhold for mail (an invitation's
// acceptance page, a password reset) from the server's public URL.
type Links struct {
	base *url.URL
}

// NewLinks checks base, the public URL clients reach Keyhold at: http or
// https, a host, an optional path prefix, no query, fragment or user.
func NewLinks(base string) (Links, error) {
	u, err := url.Parse(base)
	if err != nil {
		return Links{}, fmt.Errorf("%w: public URL %q does not parse", ErrInvalidConfig, base)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Links{}, fmt.Errorf("%w: public URL %q: want http(s)://host[:port][/prefix]", ErrInvalidConfig, base)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Links{}, fmt.Errorf("%w: public URL %q: no user, query or fragment", ErrInvalidConfig, base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return Links{base: u}, nil
}

// Base is the public URL, without a trailing slash.
func (l Links) Base() string {
	if l.base == nil {
		return ""
	}
	return l.base.String()
}

// URL returns the public URL of path (which starts with "/") with query.
// Values in query are escaped; a token passed there reaches only the
// mail, never a log.
func (l Links) URL(path string, query url.Values) string {
	if l.base == nil {
		return ""
	}
	u := *l.base
	u.Path += "/" + strings.TrimPrefix(path, "/")
	u.RawQuery = query.Encode()
	return u.String()
}
