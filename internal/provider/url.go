package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imago/imago/internal/contract"
)

// Opening a provider by URL, the go-cloud way (blob.OpenBucket, blob.URLMux,
// blob.BucketURLOpener): the URL's scheme picks the driver, which registered an
// opener for it from its own package (an init of one file), and the rest of the
// URL configures it:
//
//	local://                                  the local driver on the worker's IMAGO_HOME
//	local://?home=/srv/imago&sim=/usr/bin/sim its state directory and sim host command
//	aws://eu-west-1?vpc=vpc-…&subnets=subnet-…,subnet-…&instanceType=t3.small&listeners=prod/web=arn:…
//
// A later driver (qemu://, libvirt+ssh://host/system, gcp://PROJECT/ZONE) is a
// package with one file that calls Register in its init, and a blank import of
// it in the worker.

// ImageSource is where a driver finds images: their records, and (drivers that
// unpack them) their archives. *catalog.Catalog satisfies it.
type ImageSource interface {
	Get(ctx context.Context, id string) (contract.Image, error)
	OpenArchive(ctx context.Context, img contract.Image) (io.ReadCloser, error)
}

// OpenEnv is what an opener gets besides its URL: the parts of the worker that
// are no settings of the driver.
type OpenEnv struct {
	// Home is the worker's state directory (IMAGO_HOME).
	Home string
	// Images resolves the image IDs of provision requests.
	Images ImageSource
}

// URLOpener opens a driver from a URL of the scheme it is registered for.
// Its errors should name the URL's part that is wrong (a query parameter).
type URLOpener interface {
	OpenDriverURL(ctx context.Context, u *url.URL, env OpenEnv) (Driver, error)
}

// URLOpenerFunc is a function that is a URLOpener.
type URLOpenerFunc func(ctx context.Context, u *url.URL, env OpenEnv) (Driver, error)

// OpenDriverURL implements URLOpener.
func (f URLOpenerFunc) OpenDriverURL(ctx context.Context, u *url.URL, env OpenEnv) (Driver, error) {
	return f(ctx, u, env)
}

// URLMux maps URL schemes to openers.
type URLMux struct {
	mu      sync.RWMutex
	openers map[string]URLOpener
}

var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9]*(\+[a-z][a-z0-9]*)?$`)

// Register registers o for scheme. It panics when scheme is not a lowercase
// name (with an optional +transport) or is registered already, as go-cloud's
// muxes do: both are programming errors.
func (m *URLMux) Register(scheme string, o URLOpener) {
	if !schemeRE.MatchString(scheme) {
		panic(fmt.Sprintf("provider: scheme %q is not a lowercase name such as aws or libvirt+ssh", scheme))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.openers == nil {
		m.openers = map[string]URLOpener{}
	}
	if _, ok := m.openers[scheme]; ok {
		panic(fmt.Sprintf("provider: scheme %q registered twice", scheme))
	}
	m.openers[scheme] = o
}

// With returns a copy of m in which scheme opens with o instead (a worker
// handing a driver what a URL cannot carry: a test's credentials and endpoint).
func (m *URLMux) With(scheme string, o URLOpener) *URLMux {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := &URLMux{openers: map[string]URLOpener{}}
	for k, v := range m.openers {
		out.openers[k] = v
	}
	out.openers[scheme] = o
	return out
}

// Schemes returns the registered schemes, sorted.
func (m *URLMux) Schemes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.openers))
	for k := range m.openers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Names returns the provider names of the registered schemes (a scheme
// without its +transport), sorted: what a rollout spec's provider may say.
func (m *URLMux) Names() []string {
	var out []string
	for _, s := range m.Schemes() {
		name, _, _ := strings.Cut(s, "+")
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// ValidScheme reports whether scheme has an opener.
func (m *URLMux) ValidScheme(scheme string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.openers[scheme]
	return ok
}

// Open opens the provider urlstr names. Its errors say what is wrong with the
// URL; the caller adds which setting it came from.
func (m *URLMux) Open(ctx context.Context, urlstr string, env OpenEnv) (*Provider, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", urlstr, errors.Unwrap(err))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("%q has no scheme: write a provider URL such as %s", urlstr, m.examples())
	}
	m.mu.RLock()
	o, ok := m.openers[u.Scheme]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s:// is not a provider imago knows; use %s", u.Scheme, m.examples())
	}
	d, err := o.OpenDriverURL(ctx, u, env)
	if err != nil {
		return nil, err
	}
	name, _, _ := strings.Cut(u.Scheme, "+")
	p := New(name, d)
	p.url = u.Redacted()
	return p, nil
}

func (m *URLMux) examples() string {
	var out []string
	for _, s := range m.Schemes() {
		out = append(out, s+"://…")
	}
	if len(out) == 0 {
		return "(no provider is registered)"
	}
	return strings.Join(out, " or ")
}

var defaultMux = &URLMux{}

// DefaultURLMux is the mux drivers register with in their init, and Open uses.
func DefaultURLMux() *URLMux { return defaultMux }

// Register registers o for scheme on DefaultURLMux.
func Register(scheme string, o URLOpener) { defaultMux.Register(scheme, o) }

// Open opens the provider urlstr names with DefaultURLMux.
func Open(ctx context.Context, urlstr string, env OpenEnv) (*Provider, error) {
	return defaultMux.Open(ctx, urlstr, env)
}

// URLParams reads the query parameters of a provider URL, as go-cloud's
// openers read theirs: each getter marks its parameter known, and Err returns
// every bad value and every parameter no getter asked for, at once.
type URLParams struct {
	q    url.Values
	seen map[string]bool
	errs []error
}

// NewURLParams reads u's query.
func NewURLParams(u *url.URL) *URLParams {
	return &URLParams{q: u.Query(), seen: map[string]bool{}}
}

// String returns parameter name ("" when absent; the last one when repeated).
func (p *URLParams) String(name string) string {
	p.seen[name] = true
	vs := p.q[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// List returns parameter name split at commas, repeated parameters joined, empty parts dropped.
func (p *URLParams) List(name string) []string {
	p.seen[name] = true
	var out []string
	for _, v := range p.q[name] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// Int returns parameter name as an integer, 0 when absent.
func (p *URLParams) Int(name string) int {
	v := p.String(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.Fail(name, "%q is not a whole number", v)
	}
	return n
}

// Duration returns parameter name as a duration, 0 when absent.
func (p *URLParams) Duration(name string) time.Duration {
	v := p.String(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.Fail(name, "%q is not a duration such as 30s", v)
	}
	return d
}

// Fail records a problem with parameter name.
func (p *URLParams) Fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("query parameter %s: %s", name, fmt.Sprintf(format, args...)))
}

// Err returns the problems found, unknown parameters last, or nil.
func (p *URLParams) Err() error {
	var unknown []string
	for k := range p.q {
		if !p.seen[k] {
			unknown = append(unknown, k)
		}
	}
	errs := slices.Clone(p.errs)
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, 0, len(p.seen))
		for k := range p.seen {
			known = append(known, k)
		}
		sort.Strings(known)
		errs = append(errs, fmt.Errorf("unknown query parameter %s; known: %s", strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	return errors.Join(errs...)
}
