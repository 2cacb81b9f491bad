package router

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imago/imago/internal/contract"
)

// What a route does besides weights (contract.RouteRules): header and cookie
// matches, sticky sessions and mirroring. Argo Rollouts does these through a
// service mesh or an ingress; the local router does them itself.

// mirrorBodyLimit is the largest request body mirrored: a larger one is sent
// to the live fleet only (the copy would have to be held in memory).
const mirrorBodyLimit = 64 << 10

// mirrorSlots bounds the mirrored requests in flight: when the mirror fleet is
// slow and they are all taken, further copies are dropped (and counted), never
// queued behind the live path.
const mirrorSlots = 64

// mirrorTimeout bounds one mirrored request.
const mirrorTimeout = 10 * time.Second

type matchRoute struct {
	fleet *fleetRoute
	rules []contract.MatchRule
}

type mirrorRoute struct {
	fleet   *fleetRoute
	percent uint64
	n       atomic.Uint64
}

// take reports whether this request is one of the mirrored share: exactly
// percent of every 100 requests, spread evenly.
func (m *mirrorRoute) take() bool {
	n := m.n.Add(1)
	return n*m.percent/100 != (n-1)*m.percent/100
}

// rules builds the rule part of a table from the route's rules; byID are the
// table's fleets with targets, weighted or not.
func (t *table) rules(rr contract.RouteRules, byID map[string]*fleetRoute) {
	for _, m := range rr.Matches {
		if f := byID[m.FleetID]; f != nil && len(m.Match) > 0 {
			t.matches = append(t.matches, matchRoute{fleet: f, rules: slices.Clone(m.Match)})
		}
	}
	if s := rr.Stickiness; s != nil && s.Cookie != "" && s.TTL > 0 {
		t.sticky = s
	}
	if m := rr.Mirror; m != nil && m.Percent > 0 {
		if f := byID[m.FleetID]; f != nil {
			t.mirror = &mirrorRoute{fleet: f, percent: uint64(min(m.Percent, 100))}
		}
	}
}

// choose picks r's fleet: the first header route that matches, then the fleet
// the client is stuck to while it keeps a weight, then weighted round robin.
// stick says the answer must (re)set the sticky cookie.
func (t *table) choose(r *http.Request) (f *fleetRoute, stick bool) {
	for _, m := range t.matches {
		if matches(r, m.rules) {
			return m.fleet, false
		}
	}
	if t.sticky != nil {
		if c, err := r.Cookie(t.sticky.Cookie); err == nil {
			for _, f := range t.fleets {
				if f.id == c.Value {
					return f, false
				}
			}
		}
		f := t.pick()
		return f, f != nil
	}
	return t.pick(), false
}

// matches reports whether r matches any of rules.
func matches(r *http.Request, rules []contract.MatchRule) bool {
	for _, rule := range rules {
		switch {
		case rule.Header != "":
			if slices.Contains(r.Header.Values(rule.Header), rule.Exact) {
				return true
			}
		case rule.Cookie != "":
			if c, err := r.Cookie(rule.Cookie); err == nil && c.Value == rule.Exact {
				return true
			}
		}
	}
	return false
}

// stickTo sets the cookie that keeps the client on f.
func (t *table) stickTo(w http.ResponseWriter, f *fleetRoute) {
	http.SetCookie(w, &http.Cookie{Name: t.sticky.Cookie, Value: f.id, Path: "/",
		MaxAge: int(t.sticky.TTL.D().Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// mirrorFor returns the mirror fleet when this request, going to live, is to
// be copied, nil otherwise.
func (t *table) mirrorFor(live *fleetRoute) *fleetRoute {
	if t.mirror == nil || t.mirror.fleet == live || !t.mirror.take() {
		return nil
	}
	return t.mirror.fleet
}

// capture is the copy of a request body kept for its mirror while the live
// request reads it.
// The transport may still be reading it when the answer is done, hence mu.
type capture struct {
	io.ReadCloser
	mu   sync.Mutex
	buf  bytes.Buffer
	eof  bool
	over bool
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		if c.buf.Len()+n > mirrorBodyLimit {
			c.over = true
			c.buf = bytes.Buffer{}
		} else {
			c.buf.Write(p[:n])
		}
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// captureBody makes r's body keep a copy for the mirror. ok is false when the
// body is too large to mirror.
func captureBody(r *http.Request) (*http.Request, *capture, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil, true
	}
	if r.ContentLength > mirrorBodyLimit {
		return r, nil, false
	}
	c := &capture{ReadCloser: r.Body}
	r2 := r.WithContext(r.Context())
	r2.Body = c
	return r2, c, true
}

// hopHeaders are not forwarded (RFC 9110 7.6.1), as httputil.ReverseProxy
// leaves them out of the live request.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// sendMirror sends a copy of in to fleet m once the live answer is done: in
// the background, at most mirrorSlots at once, its answer read and dropped.
// Its counters go to m's fleet metrics, so a mirrored canary's error rate and
// latency fill before it serves anyone.
func (s *Server) sendMirror(m *fleetRoute, in *http.Request, body *capture) {
	var data []byte
	if body != nil {
		body.mu.Lock()
		whole := !body.over && body.eof
		data = bytes.Clone(body.buf.Bytes())
		body.mu.Unlock()
		if !whole {
			s.metrics.mirrorDropped.Inc() // too large, or the live request did not read it all
			return
		}
	}
	select {
	case s.mirrorSlots <- struct{}{}:
	default:
		s.metrics.mirrorDropped.Inc()
		return
	}
	header := in.Header.Clone()
	for _, h := range hopHeaders {
		header.Del(h)
	}
	header.Set("X-Imago-Mirror", "1")
	method, uri, host := in.Method, in.URL.RequestURI(), in.Host
	go func() {
		defer func() { <-s.mirrorSlots }()
		ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
		defer cancel()
		start := time.Now()
		out, err := http.NewRequestWithContext(ctx, method, "http://"+m.target()+uri, bytes.NewReader(data))
		if err != nil {
			s.metrics.mirrorDropped.Inc()
			return
		}
		out.Header, out.Host = header, host
		status := http.StatusBadGateway
		if res, err := s.transport.RoundTrip(out); err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			status = res.StatusCode
		}
		s.metrics.observe(m.id, status, time.Since(start))
	}()
}
